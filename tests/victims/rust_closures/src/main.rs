// rust_closures: closures renumbered by an edit, under
// `rewire run -- cargo run` (e2e "Rust: a closure added before another").
//
// rustc numbers the closures of a function in order: a closure added before
// an existing one renumbers it. Exercises: weighted() gets a closure before
// its own; make() gets one before the closure it boxes, while a box the old
// make() returned at start is kept and called every tick (a value of the old
// closure: it keeps the code it was made with); a static counter keeps
// counting.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N weighted=W kept=K fresh=F count=C".
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::{thread, time::Duration};

static COUNT: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn weighted(v: &[u64], k: u64) -> u64 {
    v.iter().map(|x| x * k).sum() /* @WEIGHTED */
}

#[inline(never)]
fn make(k: u64) -> Box<dyn Fn(u64) -> u64> {
    Box::new(move |x| x * k) /* @MAKE */
}

fn main() {
    println!("pid={}", std::process::id());
    let v = vec![1u64, 2, 3];
    let kept = make(10);
    for n in 1.. {
        let count = COUNT.fetch_add(1, SeqCst) + 1;
        let fresh = make(10);
        println!(
            "tick={} weighted={} kept={} fresh={} count={}",
            n, weighted(&v, n), kept(n), fresh(n), count
        );
        thread::sleep(Duration::from_millis(15));
    }
}
