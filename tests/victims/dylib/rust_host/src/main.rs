// rust_host: a plugin host on rewire::Lib (tests/e2e/dylib.sh), run
// directly. Usage: rust_host PLUGIN.so.
//
// Exercises: a Rust cdylib rebuilt by cargo is reloaded; the function
// pointer from Lib::sym reaches the new version; the state the host owns
// goes on.
//
// Output: "pid=P", then every ~10 ms "tick=N value=V count=C loaded=L
// loads=S version=R upd=U kept=K maps=M": V = step(N), C the calls the plugin counted in
// the state, L the version its load hook last saw and S its runs, R
// Lib::version, U 1 reloaded / 0 not / -1 refused, K what Lib::unload_old
// returned after the last reload (-1: not called yet), M the copies of the
// plugin mapped in the process. "err: TEXT" on stderr each time
// Lib::error changes.
use std::ffi::c_void;
use std::{thread, time::Duration};

#[repr(C)]
struct State {
    count: i64,
    loaded: i32,
    loads: i32,
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: rust_host PLUGIN.so");
    let state = Box::into_raw(Box::new(State { count: 0, loaded: 0, loads: 0 }));
    let mut lib = rewire::Lib::open(&path, state as *mut c_void).unwrap_or_else(|e| {
        eprintln!("open: {e}");
        std::process::exit(1)
    });
    // SAFETY: the plugin's step has this type in every version.
    let step: extern "C" fn(*mut c_void, i64) -> i64 = unsafe { lib.sym("step") }.unwrap_or_else(|e| {
        eprintln!("sym: {e}");
        std::process::exit(1)
    });
    println!("pid={}", std::process::id());
    let mut last = String::new();
    let mut kept = -1;
    for n in 1.. {
        let upd = match lib.update() {
            Ok(true) => {
                // Nothing runs in the old version between two ticks.
                kept = lib.unload_old() as i32;
                1
            }
            Ok(false) => 0,
            Err(_) => -1,
        };
        let e = lib.error().unwrap_or("").to_string();
        if e != last {
            eprintln!("err: {e}");
            last = e;
        }
        let value = step(state as *mut c_void, n);
        // SAFETY: state lives for the whole program; the plugin wrote it in step.
        let s = unsafe { &*state };
        println!(
            "tick={n} value={value} count={} loaded={} loads={} version={} upd={upd} kept={kept} maps={}",
            s.count,
            s.loaded,
            s.loads,
            lib.version(),
            plugin_copies()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// The plugin's copies mapped in the process (/proc/self/maps).
fn plugin_copies() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("librust_plugin.so."))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths.len()
}
