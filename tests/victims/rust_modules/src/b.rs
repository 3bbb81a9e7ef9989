// b: one function, edited alone; a build with RW_MODULES_X in its
// environment (option_env!, which cargo tracks) adds one more.
const K: u64 = if option_env!("RW_MODULES_X").is_some() { 21 } else { 20 };

#[inline(never)]
pub fn b_value(n: u64) -> u64 {
    n + K /* @B */
}
