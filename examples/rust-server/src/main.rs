//! rust-server: a tiny HTTP server on std::net whose handler you edit while
//! requests keep coming.
//!
//!     cd examples/rust-server
//!     rewire run -- cargo run            # serves http://127.0.0.1:7878/
//!     curl -s http://127.0.0.1:7878/     # in another terminal, again and again
//!     # edit handle() below and save: the next request gets the new answer;
//!     # the hit counter and the open listener are kept.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};

static HITS: AtomicU64 = AtomicU64::new(0);

/// The answer to one request: edit me while the server runs.
#[inline(never)]
fn handle(path: &str, hits: u64) -> String {
    format!("hello from rewire: {} (request {})\n", path, hits)
}

fn serve(mut stream: TcpStream) {
    // Read the whole request head, to its empty line: a socket closed with
    // unread input sends the client a reset, which discards our answer.
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut header = String::new();
    while matches!(reader.read_line(&mut header), Ok(n) if n > 0) && header.trim_end().len() > 0 {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let hits = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    let body = handle(&path, hits);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        body
    );
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7878".to_string());
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("listening on http://{}/ (pid {})", addr, std::process::id());
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream));
    }
}
