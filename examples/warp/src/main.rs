//! `cargo run -p example-warp`: the chat, echo and event-stream example on warp.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // before the address is announced: from then on SIGTERM or Ctrl-C drains
    let stop = example_common::shutdown_signal();
    let (listener, app) = match example_common::startup_tokio("example-warp").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    example_warp::run(listener, app, stop).await;
    ExitCode::SUCCESS
}
