// a: a constant that c uses too, and a static counter.
use std::sync::atomic::{AtomicU64, Ordering};

pub const STEP: u64 = 1; /* @STEP */
static HITS: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
pub fn a_value(n: u64) -> u64 {
    HITS.fetch_add(1, Ordering::SeqCst);
    n * STEP + 10 /* @A */
}

#[inline(never)]
pub fn hits() -> u64 {
    HITS.load(Ordering::SeqCst)
}
