//! `cargo run -p example-hyper`: the chat, echo and event-stream example on hyper.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let (listener, app) = match example_common::startup_tokio("example-hyper").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    example_hyper::run(listener, app, example_common::ctrl_c()).await;
    ExitCode::SUCCESS
}
