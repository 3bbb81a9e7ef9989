// rust_modules: a crate of several modules, so of several codegen units
// (rustc's incremental build gives each module its own), patched under
// `rewire run -- cargo run` (e2e "Rust: only the codegen units…"): an
// edit of one module, a constant two modules use, a new module.
//
// Output: "pid=P" first, then every ~15 ms
// "tick=N a=A b=B c=C d=D hits=H count=K".
mod a;
mod b;
mod c;
/* @MOD */
use std::{thread, time::Duration};

#[inline(never)]
fn tick(n: u64) {
    let d = 0; /* @D */
    println!(
        "tick={} a={} b={} c={} d={} hits={} count={}",
        n,
        a::a_value(n),
        b::b_value(n),
        c::c_value(n),
        d,
        a::hits(),
        c::count()
    );
}

fn main() {
    println!("pid={}", std::process::id());
    for n in 1.. {
        tick(n);
        thread::sleep(Duration::from_millis(15));
    }
}
