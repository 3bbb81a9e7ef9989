//! An HTTP server on tokio and hyper: every request is answered with one
//! line of JSON, `{"greeting":"hello ...","path":...,"served":N}`, N the
//! requests served since start (state a restart loses, a patch keeps).
//! bench/rust.sh edits `greeting()`.
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

static SERVED: AtomicU64 = AtomicU64::new(0);

fn greeting() -> String {
    format!("hello from rewire") // MARK
}

async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    let body = serde_json::json!({
        "greeting": greeting(),
        "path": req.uri().path(),
        "served": served,
    });
    Ok(Response::new(Body::from(format!("{}\n", body))))
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_string())
        .parse()
        .expect("an address such as 127.0.0.1:3000");
    let make = make_service_fn(|_| async { Ok::<_, Infallible>(service_fn(handle)) });
    println!("listening on {}", addr);
    if let Err(e) = Server::bind(&addr).serve(make).await {
        eprintln!("rust-http: {}", e);
    }
}
