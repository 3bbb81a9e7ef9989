// rust_a64.rs: a Rust program for the aarch64 tests (tests/e2e/aarch64.sh),
// built by rustc alone (no cargo) for aarch64-unknown-linux-gnu and run
// under qemu-user. Every 30 ms it prints
//   pid=P tick=N value=V count=C names=L caught=K
// V = compute(N) (N * 2 as built); C counts the lines in a static atomic;
// L is the length of a Vec in a static Mutex, one name pushed a line; K
// counts the panics of risky(N) caught by main (none as built). The first
// line is "pid=P".
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static COUNT: AtomicU64 = AtomicU64::new(0);
static CAUGHT: AtomicU64 = AtomicU64::new(0);
static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/* @EXTRA */

#[inline(never)]
fn compute(tick: u64) -> u64 {
    tick * 2 /* @BODY */
}

#[inline(never)]
fn risky(tick: u64) -> u64 {
    tick + COUNT.load(Ordering::Relaxed) * 0 /* @RISKY */
}

// One line: what main's loop calls, so that a patch of it runs at the
// next tick (main itself never returns to be entered again).
#[inline(never)]
fn step(tick: u64) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    let names = {
        let mut v = NAMES.lock().unwrap();
        v.push(format!("tick{}", tick));
        v.len()
    };
    if std::panic::catch_unwind(|| risky(tick)).is_err() {
        CAUGHT.fetch_add(1, Ordering::Relaxed);
    }
    println!(
        "pid={} tick={} value={} count={} names={} caught={}",
        std::process::id(),
        tick,
        compute(tick),
        COUNT.load(Ordering::Relaxed),
        names,
        CAUGHT.load(Ordering::Relaxed)
    );
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    println!("pid={}", std::process::id());
    for tick in 1u64.. {
        step(tick);
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
}
