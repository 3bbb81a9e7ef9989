// rust_api: a Rust program that uses the `rewire` crate (bindings/rust)
// under `rewire run -- cargo run` (e2e "Rust: rewire::poll and
// rewire::on_patch").
//
// Exercises: each tick computes compute(N) twice, 3 ms apart, and then calls
// rewire::poll(): a patch must never land between the two calls; the
// on_patch hook runs inside poll(). rewire::call() guards the work.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N a=A b=B hooks=H inpoll=I version=V crashed=C".
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::{thread, time::Duration};

static HOOKS: AtomicU64 = AtomicU64::new(0);
static VERSION: AtomicI32 = AtomicI32::new(0);
static IN_POLL: AtomicBool = AtomicBool::new(false);
static HOOK_IN_POLL: AtomicBool = AtomicBool::new(true);

#[inline(never)]
fn compute(x: u64) -> u64 {
    x * 2 /* @BODY */
}

fn main() {
    println!("pid={}", std::process::id());
    rewire::on_patch(|p| {
        HOOKS.fetch_add(1, SeqCst);
        VERSION.store(p.version, SeqCst);
        if !IN_POLL.load(SeqCst) {
            HOOK_IN_POLL.store(false, SeqCst);
        }
    });
    for n in 1.. {
        let (mut a, mut b) = (0, 0);
        let crashed = rewire::call(|| {
            a = compute(n);
            thread::sleep(Duration::from_millis(3));
            b = compute(n);
        })
        .is_err();
        println!(
            "tick={} a={} b={} hooks={} inpoll={} version={} crashed={}",
            n, a, b, HOOKS.load(SeqCst), HOOK_IN_POLL.load(SeqCst) as u8,
            VERSION.load(SeqCst), crashed as u8
        );
        IN_POLL.store(true, SeqCst);
        rewire::poll();
        IN_POLL.store(false, SeqCst);
        thread::sleep(Duration::from_millis(12));
    }
}
