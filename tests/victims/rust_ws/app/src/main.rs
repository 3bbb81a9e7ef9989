// The binary crate: report() is edited; it calls the library.
// Output: "pid=P" first, then every ~15 ms "tick=N scaled=S hits=H tag=T".
use std::sync::atomic::Ordering;

#[inline(never)]
fn report(n: u64) {
    let s = util::scale(n);
    let tag = 1; /* @TAG */
    println!("tick={} scaled={} hits={} tag={}", n, s, util::HITS.load(Ordering::SeqCst), tag);
}

fn main() {
    println!("pid={}", std::process::id());
    for n in 1.. {
        report(n);
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
}
