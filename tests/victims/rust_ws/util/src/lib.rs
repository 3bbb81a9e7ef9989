// The library crate: scale() is edited while the binary runs; HITS is its
// state, which must keep counting.
use std::sync::atomic::{AtomicU64, Ordering};

pub static HITS: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
pub fn scale(x: u64) -> u64 {
    HITS.fetch_add(1, Ordering::SeqCst);
    x * 10 /* @SCALE */
}
