// rust_threads: 4 threads call compute() in tight loops while it is
// patched back and forth (e2e "Rust: 4 threads while patched 100 times").
// Every result must be one some version computes: x*7+1 or x*7+2.
//
// Output: "pid=P" first, then every ~20 ms "calls=C invalid=I".
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::{thread, time::Duration};

static CALLS: AtomicU64 = AtomicU64::new(0);
static INVALID: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn compute(x: u64) -> u64 {
    x * 7 + 1 /* @BODY */
}

fn main() {
    println!("pid={}", std::process::id());
    for _ in 0..4 {
        thread::spawn(|| {
            let mut x: u64 = 0;
            loop {
                x = x.wrapping_add(1) % 1_000_000;
                let v = compute(black_box(x));
                if v != x * 7 + 1 && v != x * 7 + 2 {
                    INVALID.fetch_add(1, Ordering::Relaxed);
                }
                CALLS.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    loop {
        println!("calls={} invalid={}", CALLS.load(Ordering::Relaxed), INVALID.load(Ordering::Relaxed));
        thread::sleep(Duration::from_millis(20));
    }
}
