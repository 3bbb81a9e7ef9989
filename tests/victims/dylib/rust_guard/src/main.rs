// rust_guard: a plugin host calling its plugin through rewire::Lib::call
// (tests/e2e/dylib.sh), run directly. Usage: rust_guard PLUGIN.so MODE,
// MODE one of:
//   guarded    step runs inside Lib::call: a version that crashes or
//              panics is rolled back and the host goes on;
//   unguarded  step is called directly: a crash kills the host as usual;
//   hostcrash  step inside Lib::call, and at tick 5 the host's own code
//              writes through a null pointer inside Lib::call: not library
//              code, so the host dies as usual;
//   hot        step through hot_module!'s plugin::guarded::step, the plugin
//              updated by plugin::update (no Lib of the host's own).
//
// Output: "pid=P", then every ~10 ms "tick=N value=V count=C loaded=L
// loads=S version=R upd=U crashed=K crashes=T status=S host_panic=H": V =
// step(N) (-1 when it crashed), C the calls the plugin counted in the
// state, L the version its load hook last saw and S its runs, R
// Lib::version, U 1 reloaded / 0 not / -1 refused, K 1 when Lib::call
// returned Err, T how many did so far, S Lib::status in short, H 1 when a
// panic of the host's own code inside Lib::call unwound out of it (tried
// once at the start; -1 in mode hot). "err: TEXT" on stderr each time
// Lib::error changes.
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::{thread, time::Duration};

#[repr(C)]
struct State {
    count: i64,
    loaded: i32,
    loads: i32,
}

type Step = unsafe extern "C-unwind" fn(*mut c_void, i64) -> i64;

rewire::hot_module! {
    mod plugin(std::env::args().nth(1).expect("usage: rust_guard PLUGIN.so MODE")) {
        /// The plugin's step; state is the host's State.
        unsafe fn step(state: *mut c_void, n: i64) -> i64;
    }
}

/// What a tick prints.
struct Tick<'a> {
    n: i64,
    r: Result<i64, rewire::LibError>,
    upd: i32,
    version: i32,
    status: &'a rewire::Status,
    host_panic: i32,
}

fn report(t: Tick, state: *mut State, crashes: &mut i32) {
    *crashes += t.r.is_err() as i32;
    let status = match t.status {
        rewire::Status::NotChanged => "same",
        rewire::Status::Updated(_) => "updated",
        rewire::Status::Refused(_) => "refused",
        rewire::Status::Waiting(_) => "waiting",
        rewire::Status::Postponed => "postponed",
        rewire::Status::Crashed(_) => "crashed",
    };
    // SAFETY: state lives for the whole program; the plugin wrote it in step.
    let s = unsafe { &*state };
    println!(
        "tick={} value={} count={} loaded={} loads={} version={} upd={} crashed={} crashes={crashes} status={status} host_panic={}",
        t.n,
        t.r.as_ref().map_or(-1, |v| *v),
        s.count,
        s.loaded,
        s.loads,
        t.version,
        t.upd,
        t.r.is_err() as i32,
        t.host_panic
    );
}

fn show_error(e: &str, last: &mut String) {
    if e != last {
        eprintln!("err: {e}");
        *last = e.to_string();
    }
}

fn hot(state: *mut State) {
    plugin::init(state as *mut c_void).unwrap_or_else(|e| {
        eprintln!("open: {e}");
        std::process::exit(1)
    });
    println!("pid={}", std::process::id());
    let (mut last, mut crashes) = (String::new(), 0);
    for n in 1.. {
        let upd = match plugin::update() {
            Ok(u) => u as i32,
            Err(_) => -1,
        };
        // SAFETY: state is the plugin's State, alive for the whole program.
        let r = unsafe { plugin::guarded::step(state as *mut c_void, n) };
        show_error(plugin::lib().error().unwrap_or(""), &mut last);
        let status = plugin::status();
        let t = Tick { n, r, upd, version: plugin::version(), status: &status, host_panic: -1 };
        report(t, state, &mut crashes);
        thread::sleep(Duration::from_millis(10));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (path, mode) = (args.next().expect("usage: rust_guard PLUGIN.so MODE"), args.next().unwrap_or_default());
    let state = Box::into_raw(Box::new(State { count: 0, loaded: 0, loads: 0 }));
    if mode == "hot" {
        return hot(state);
    }
    let mut lib = rewire::Lib::open(&path, state as *mut c_void).unwrap_or_else(|e| {
        eprintln!("open: {e}");
        std::process::exit(1)
    });
    // SAFETY: the plugin's step has this type in every version (an
    // extern "C" function may be called as "C-unwind").
    let step: Step = unsafe { lib.sym("step") }.unwrap_or_else(|e| {
        eprintln!("sym: {e}");
        std::process::exit(1)
    });
    let host_panic = catch_unwind(AssertUnwindSafe(|| lib.call(|| -> i64 { panic!("the host's own panic") }))).is_err();
    println!("pid={}", std::process::id());
    let (mut last, mut crashes) = (String::new(), 0);
    for n in 1.. {
        let upd = match lib.update() {
            Ok(true) => 1,
            Ok(false) => 0,
            Err(_) => -1,
        };
        let st = state as *mut c_void;
        // SAFETY: state is the plugin's State, alive for the whole program.
        let r = match mode.as_str() {
            "unguarded" => Ok(unsafe { step(st, n) }),
            _ => lib.call(|| unsafe { step(st, n) }),
        };
        if mode == "hostcrash" && n == 5 {
            // SAFETY: none: the host's own bug, on purpose.
            let _ = lib.call(|| unsafe { std::ptr::write_volatile(std::ptr::null_mut::<i64>(), n) });
        }
        show_error(lib.error().unwrap_or(""), &mut last);
        let t = Tick { n, r, upd, version: lib.version(), status: lib.status(), host_panic: host_panic as i32 };
        report(t, state, &mut crashes);
        thread::sleep(Duration::from_millis(10));
    }
}
