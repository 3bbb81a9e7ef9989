// d: a module added while the program runs.
#[inline(never)]
pub fn d_value(n: u64) -> u64 {
    n + 40
}
