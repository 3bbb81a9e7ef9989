// rust_api: a Rust program that uses the `rewire` crate (bindings/rust)
// under `rewire run -- cargo run` (e2e "Rust: rewire::poll and
// rewire::on_patch").
//
// Exercises: each tick computes compute(N) twice, 3 ms apart, and then calls
// rewire::poll(): a patch must never land between the two calls; the
// on_patch hook runs inside poll(). rewire::call() guards the work: a crash
// or a panic of patched code in it is an Err (err=signal, err=panic:MSG);
// a panic of code no patch touched (plain(), every 4th tick) goes on
// unwinding to the program's own catch_unwind (outer=propagated), and from
// tick 2 on the program's own panic hook (silent, set after rewire's) runs.
// A counter in the closure's frame counts the unwound drops (dropped=D).
// The hook is told the replaced functions' linkage names (mangled) and
// their names for people: named=1 when the last patch named compute both
// ways.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N a=A b=B hooks=H inpoll=I version=V crashed=C err=E outer=O
// dropped=D named=M".
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::{thread, time::Duration};

static HOOKS: AtomicU64 = AtomicU64::new(0);
static VERSION: AtomicI32 = AtomicI32::new(0);
static IN_POLL: AtomicBool = AtomicBool::new(false);
static HOOK_IN_POLL: AtomicBool = AtomicBool::new(true);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static NAMED: AtomicBool = AtomicBool::new(false);

struct CountDrop;

impl Drop for CountDrop {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, SeqCst);
    }
}

#[inline(never)]
fn compute(x: u64) -> u64 {
    x * 2 /* @BODY */
}

#[inline(never)]
fn plain(n: u64) -> u64 {
    if n % 4 == 0 {
        panic!("plain");
    }
    n
}

fn main() {
    println!("pid={}", std::process::id());
    let hooked = rewire::on_patch(|p| {
        HOOKS.fetch_add(1, SeqCst);
        VERSION.store(p.version, SeqCst);
        let mangled = p.functions().any(|f| f.starts_with("_ZN") && f.contains("7compute"));
        let named = p.names().any(|n| n == "rust_api::compute");
        NAMED.store(mangled && named, SeqCst);
        if !IN_POLL.load(SeqCst) {
            HOOK_IN_POLL.store(false, SeqCst);
        }
    });
    for n in 1.. {
        let (mut a, mut b) = (0, 0);
        if n == 2 {
            std::panic::set_hook(Box::new(|_| {})); // replaces rewire's
        }
        let res = rewire::call(|| {
            let _d = CountDrop;
            a = compute(n);
            thread::sleep(Duration::from_millis(3));
            b = compute(n);
        });
        let err = match &res {
            Ok(()) => "none".to_string(),
            Err(rewire::Crashed::Panic(m)) => format!("panic:{m}"),
            Err(_) => "signal".to_string(),
        };
        let outer = match std::panic::catch_unwind(|| rewire::call(|| {
            let _ = plain(n);
        })) {
            Ok(Ok(())) => "ok",
            Ok(Err(_)) => "err",
            Err(_) => "propagated",
        };
        println!(
            "tick={} a={} b={} hooks={} inpoll={} version={} crashed={} err={} outer={} dropped={} named={} hooked={}",
            n, a, b, HOOKS.load(SeqCst), HOOK_IN_POLL.load(SeqCst) as u8,
            VERSION.load(SeqCst), res.is_err() as u8, err, outer, DROPPED.load(SeqCst),
            NAMED.load(SeqCst) as u8, hooked as u8
        );
        IN_POLL.store(true, SeqCst);
        rewire::poll();
        IN_POLL.store(false, SeqCst);
        thread::sleep(Duration::from_millis(12));
    }
}
