//! `cargo run -p example-hyper`: the chat and echo example on hyper.

use example_hyper::{run, App, Settings};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
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
    let app = App::new(settings.hub_config());
    tracing::info!(
        "listening on http://{addr}/ (chat: ws://{addr}/ws/chat, echo: ws://{addr}/ws/echo)"
    );
    eprintln!("example-hyper listening on http://{addr}/");
    run(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    })
    .await;
    std::process::ExitCode::SUCCESS
}
