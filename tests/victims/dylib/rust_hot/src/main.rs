// rust_hot: a plugin host on rewire::hot_module! (tests/e2e/dylib.sh), run
// directly. Usage: rust_hot PLUGIN.so BLOCK_FILE.
//
// Exercises: typed wrappers generated from the plugin's signatures; a
// watcher thread that reloads; the host postponing a reload (while
// BLOCK_FILE exists) and hearing of it after; was_updated once per reload.
//
// Output: "pid=P", then every ~10 ms "tick=N value=V count=C version=R
// upd=U before=B postponed=Q after=A status=S": V = plugin::step(state, N),
// C the calls the plugin counted in the state, R plugin::version(), U 1
// when plugin::was_updated() said so, B the versions before_reload was
// asked about (their sum), Q how many times it said not now, A the last
// version after_reload was told of, S plugin::status() in short.
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::{thread, time::Duration};

#[repr(C)]
struct State {
    count: i64,
    loaded: i32,
    loads: i32,
}

static BLOCK: OnceLock<PathBuf> = OnceLock::new();
static BEFORE: AtomicI64 = AtomicI64::new(0);
static POSTPONED: AtomicI64 = AtomicI64::new(0);
static AFTER: AtomicI64 = AtomicI64::new(0);

rewire::hot_module! {
    mod plugin(std::env::args().nth(1).expect("usage: rust_hot PLUGIN.so BLOCK_FILE")) {
        /// The plugin's step; state is the host's State.
        unsafe fn step(state: *mut c_void, n: i64) -> i64;
    }
}

fn main() {
    BLOCK.set(std::env::args().nth(2).expect("usage: rust_hot PLUGIN.so BLOCK_FILE").into()).unwrap();
    let state = Box::into_raw(Box::new(State { count: 0, loaded: 0, loads: 0 }));
    plugin::init(state as *mut c_void).unwrap_or_else(|e| {
        eprintln!("open: {e}");
        std::process::exit(1)
    });
    plugin::before_reload(|v| {
        BEFORE.fetch_add(v as i64, Ordering::Relaxed);
        let go = !BLOCK.get().unwrap().exists();
        if !go {
            POSTPONED.fetch_add(1, Ordering::Relaxed);
        }
        go
    });
    plugin::after_reload(|v| AFTER.store(v as i64, Ordering::Relaxed));
    let _watcher = plugin::watch(Duration::from_millis(5));
    println!("pid={}", std::process::id());
    for n in 1.. {
        // SAFETY: state is the plugin's State, alive for the whole program.
        let value = unsafe { plugin::step(state as *mut c_void, n) };
        let upd = plugin::was_updated() as i32;
        let status = match plugin::status() {
            rewire::Status::NotChanged => "same".to_string(),
            rewire::Status::Updated(v) => format!("updated{v}"),
            rewire::Status::Refused(_) => "refused".to_string(),
            rewire::Status::Waiting(_) => "waiting".to_string(),
            rewire::Status::Postponed => "postponed".to_string(),
            rewire::Status::Crashed(_) => "crashed".to_string(),
        };
        // SAFETY: as above; the plugin wrote it in step.
        let s = unsafe { &*state };
        println!(
            "tick={n} value={value} count={} version={} upd={upd} before={} postponed={} after={} status={status}",
            s.count,
            plugin::version(),
            BEFORE.load(Ordering::Relaxed),
            POSTPONED.load(Ordering::Relaxed),
            AFTER.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_millis(10));
    }
}
