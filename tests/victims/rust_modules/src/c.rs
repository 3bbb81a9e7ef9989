// c: uses a's constant; counts its calls.
use std::sync::atomic::{AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
pub fn c_value(n: u64) -> u64 {
    COUNT.fetch_add(1, Ordering::SeqCst);
    n * crate::a::STEP * 2 /* @C */
}

#[inline(never)]
pub fn count() -> u64 {
    COUNT.load(Ordering::SeqCst)
}
