//! The oracle's Rust program: one JSON command a line on stdin, one answer a
//! line on stdout. Every answer depends on its line alone.
use std::io::{BufRead, Write};

mod shapes;
mod stats;

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(_) => break,
        };
        let answer = shapes::handle(&line);
        writeln!(out, "{}", answer).unwrap();
    }
}
