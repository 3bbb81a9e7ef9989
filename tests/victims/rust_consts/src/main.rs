// rust_consts: edits that change only constants of a Rust program, under
// `rewire run -- cargo run` (e2e "Rust: an edited constant takes effect").
//
// Exercises: a string literal promoted to a `&&str` constant and passed to
// a generic function (what `format!` and many macros make), a `const` &str
// (the code refers to an anonymous constant that points at the bytes), an
// immutable `static` &str, a `match` that a release build turns into a
// lookup table, a floating-point literal; a `static AtomicU64` that must
// keep counting across patches.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N shown=S greet=G name=M score=C scaled=F count=K".
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::{hint::black_box, thread, time::Duration};

static COUNT: AtomicU64 = AtomicU64::new(0);

const GREETING: &str = "hello"; /* @GREETING */
static NAME: &str = "anna"; /* @NAME */

#[derive(Clone, Copy)]
enum Bird {
    Crow,
    Duck,
    Hawk,
    Wren,
}

#[inline(never)]
fn show<T: Debug>(v: &T) -> String {
    format!("{:?}", v)
}

#[inline(never)]
fn render(n: u64) -> String {
    format!("{}-{}", n, show(&"first")) /* @SHOWN */
}

#[inline(never)]
fn greet() -> &'static str {
    GREETING
}

#[inline(never)]
fn name() -> &'static str {
    NAME
}

#[inline(never)]
fn score(b: Bird) -> u64 {
    match b {
        Bird::Crow => 10,
        Bird::Duck => 50, /* @SCORE */
        Bird::Hawk => 70,
        Bird::Wren => 90,
    }
}

#[inline(never)]
fn scaled(t: u64) -> u64 {
    (t as f64 * 1.5 * 2.0) as u64 /* @SCALED */
}

// The loop calls this anew each tick: a release build may fold the
// constants of the functions above into it (and would into main's loop,
// whose running frame never picks up a patch).
#[inline(never)]
fn line(tick: u64, b: Bird) -> String {
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "pid={} tick={} shown={} greet={} name={} score={} scaled={} count={}",
        std::process::id(), tick, render(black_box(tick)), greet(), name(), score(b),
        scaled(black_box(tick)), n
    )
}

fn main() {
    println!("pid={}", std::process::id());
    let birds = [Bird::Crow, Bird::Duck, Bird::Hawk, Bird::Wren];
    for tick in 1u64.. {
        println!("{}", line(black_box(tick), birds[black_box(1usize)]));
        thread::sleep(Duration::from_millis(15));
    }
}
