//! `cargo run -p example-warp`: the chat, echo and event-stream example on warp.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let (listener, app) = match example_common::startup("example-warp").await {
        Ok((listener, app)) => (example_common::tokio_listener(listener), app),
        Err(code) => return code,
    };
    let listener = match listener {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot use the listener: {error}");
            return ExitCode::FAILURE;
        }
    };
    example_warp::run(listener, app, example_common::ctrl_c()).await;
    ExitCode::SUCCESS
}
