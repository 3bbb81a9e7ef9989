// rust_deps: three plugins (dep_a.c, dep_b.c, dep_c.c: C uses B and A, B
// uses A) in a rewire::Libs, opened dependencies first, reloaded with
// Libs::update_all and called through Libs::call (tests/e2e/dylib.sh).
//
// Usage: rust_deps libA.so libB.so libC.so. Output: "pid=P", the hook lines
// the libraries print ("hook=load lib=A version=1"...), and every ~10 ms
// "tick=N a=A b=B c=C va=.. vb=.. vc=.. upd=U crashed=K": the three
// functions of N through the pointers from Libs::sym (-1 when the call
// crashed), the versions, what Libs::update_all returned (-1: Err), and 1
// when Libs::call returned Err. "err: TEXT" on stderr for each Err.
use std::ffi::{c_char, c_int, c_void};
use std::{thread, time::Duration};

extern "C" {
    static stdout: *mut c_void;
    fn setvbuf(f: *mut c_void, buf: *mut c_char, mode: c_int, size: usize) -> c_int;
}

type Fn1 = extern "C" fn(c_int) -> c_int;

fn main() {
    // The libraries print with C's stdio: a line at a time, as this does.
    // SAFETY: C's stdout, before anything is written to it.
    unsafe { setvbuf(stdout, std::ptr::null_mut(), 1, 0) };
    let paths: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(paths.len(), 3, "usage: rust_deps libA.so libB.so libC.so");
    println!("pid={}", std::process::id());
    let mut libs = rewire::Libs::new();
    let mut f: Vec<Fn1> = Vec::new();
    for (path, name) in paths.iter().zip(["a_value", "b_value", "c_value"]) {
        let i = libs.open(path, std::ptr::null_mut()).unwrap_or_else(|e| {
            eprintln!("open: {e}");
            std::process::exit(1)
        });
        // SAFETY: the libraries' functions have this type in every version.
        f.push(unsafe { libs.sym(i, name) }.unwrap_or_else(|e| {
            eprintln!("sym: {e}");
            std::process::exit(1)
        }));
    }
    for n in 1.. {
        let upd = match libs.update_all() {
            Ok(k) => k as i64,
            Err(e) => {
                eprintln!("err: {e}");
                -1
            }
        };
        let r = libs.call(|| (f[0](n), f[1](n), f[2](n)));
        if let Err(e) = &r {
            eprintln!("err: {e}");
        }
        let (a, b, c) = r.clone().unwrap_or((-1, -1, -1));
        let v = |i| libs.get(i).map_or(0, |l| l.version());
        println!(
            "tick={n} a={a} b={b} c={c} va={} vb={} vc={} upd={upd} crashed={}",
            v(0),
            v(1),
            v(2),
            r.is_err() as i32
        );
        thread::sleep(Duration::from_millis(10));
    }
}
