//! `cargo run -p example-warp`: the chat, echo and event-stream example on warp.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let (listener, app) = match example_common::startup_tokio("example-warp").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    example_warp::run(listener, app, example_common::ctrl_c()).await;
    ExitCode::SUCCESS
}
