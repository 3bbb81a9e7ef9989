// b: one function, edited alone.
#[inline(never)]
pub fn b_value(n: u64) -> u64 {
    n + 20 /* @B */
}
