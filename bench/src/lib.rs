//! The benchmark harness's shared pieces: the wire format the load generator speaks by hand
//! (so the client costs little), the latency histogram, and reading a server's CPU time and
//! memory from /proc. The binaries: `loadgen` (the generator), `floor` (the syscall floor) and
//! `naive-hub` (tokio-tungstenite as users commonly write it). `cargo xtask bench` runs them.

pub mod hist;
pub mod procfs;
pub mod wire;
