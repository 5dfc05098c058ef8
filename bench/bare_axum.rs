//! The ceiling for the intake benchmark: a bare axum handler on the same machine that reads a
//! POST body and answers 200, doing nothing else. `cargo build --release --example bare_axum`.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let app = Router::new().route(
        "/alerts/alertmanager",
        post(|body: Bytes| async move { format!("{{\"bytes\":{}}}", body.len()) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}
