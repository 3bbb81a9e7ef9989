// rust_ticker: a Rust program patched while it runs, under
// `rewire run -- cargo run` (e2e "Rust: cargo run, edit, save").
//
// Exercises: a function's body, a closure, a generic function's instance,
// a trait method called through `dyn Trait` from unchanged code, a panic
// raised by patched code and caught by unchanged code, an `async fn` (its
// state machine, polled by a tiny executor), a `#[no_mangle]` function; a
// `static AtomicU64` and a `thread_local!` counter that must keep counting
// across patches.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N value=V closure=C generic=G shape=S caught=K atomic=A local=L
// asyncv=Y nomangle=M".
use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::sync::atomic::{AtomicU64, Ordering};
use std::{thread, time::Duration};

static ATOMIC: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static LOCAL: Cell<u64> = Cell::new(1000);
}

trait Shape {
    fn area(&self) -> u64;
}

struct Square(u64); /* @SQUARE */

impl Shape for Square {
    fn area(&self) -> u64 {
        self.0 * self.0 /* @AREA */
    }
}

#[inline(never)]
fn compute(x: u64) -> u64 {
    x * 2 /* @BODY */
}

#[inline(never)]
fn twice<T: Copy + std::ops::Add<Output = T>>(x: T) -> T {
    x + x /* @GENERIC */
}

#[inline(never)]
fn risky(n: u64) -> u64 {
    if n % 3 == 0 {
        panic!("v1"); /* @PANIC */
    }
    n
}

async fn half(x: u64) -> u64 {
    x / 2 /* @ASYNC */
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn rw_ticker_offset(x: u64) -> u64 {
    x + 7 /* @NOMANGLE */
}

struct NoWake;

impl Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls a future that never waits to its end.
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(NoWake));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[inline(never)]
fn tick(n: u64, shape: &dyn Shape) {
    let add = |k: u64| k + 1; /* @CLOSURE */
    let a = ATOMIC.fetch_add(1, Ordering::SeqCst) + 1;
    let l = LOCAL.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let caught = match std::panic::catch_unwind(|| risky(n)) {
        Ok(_) => "none".to_string(),
        Err(e) => e.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_default(),
    };
    println!(
        "tick={} value={} closure={} generic={} shape={} caught={} atomic={} local={} asyncv={} nomangle={}",
        n, compute(n), add(n), twice(n) + u64::from(twice(n as u32)) * 0, shape.area(), caught, a, l, block_on(half(n)),
        rw_ticker_offset(n)
    );
}

fn main() {
    std::panic::set_hook(Box::new(|_| {})); // caught panics print nothing
    println!("pid={}", std::process::id());
    let shape: Box<dyn Shape> = Box::new(Square(3));
    for n in 1.. {
        tick(n, shape.as_ref());
        thread::sleep(Duration::from_millis(15));
    }
}
