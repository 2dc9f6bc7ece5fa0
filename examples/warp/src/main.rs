//! `cargo run -p example-warp`: the chat, echo and event-stream example on warp.

use example_common::{App, Settings};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    example_common::init_tracing();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", settings.addr);
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(settings.addr);
    tracing::info!("example-warp listening on http://{addr}/");
    example_warp::run(
        listener,
        App::new(settings.hub_config()),
        example_common::ctrl_c(),
    )
    .await;
    std::process::ExitCode::SUCCESS
}
