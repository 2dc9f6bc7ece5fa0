//! The benchmark harness's shared pieces: the wire format the load generator speaks by hand
//! (so the client costs little), the latency histogram, and reading a server's CPU time and
//! memory from /proc. The binaries: `loadgen` (the generator), `floor` (the syscall floor),
//! `naive-hub` (tokio-tungstenite as users commonly write it), and S8's `topic_hub` (a hub on
//! hub-hyper with topics) and `topic_churn` (subscribe + unsubscribe in process). `cargo xtask
//! bench` runs them.

pub mod hist;
pub mod procfs;
pub mod wire;

/// Binds `HOST:PORT` (127.0.0.1:0 by default) and prints `NAME listening on http://ADDR/`,
/// the line the harness reads the address from (as the examples log it).
///
/// # Errors
/// If the address does not parse or cannot be bound.
pub async fn listen(name: &str) -> std::io::Result<tokio::net::TcpListener> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
    let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
    #[allow(clippy::print_stdout)] // the harness reads the address from stdout
    {
        println!("{name} listening on http://{}/", listener.local_addr()?);
    }
    Ok(listener)
}
