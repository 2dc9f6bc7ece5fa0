//! `cargo run -p example-actix`: the chat, echo and event-stream example on actix-web
//! (WebSocket upgrades on the lean path).

use example_actix::Upgrades;
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let (listener, app) = match example_common::startup("example-actix").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    match example_actix::run_with(listener, app, example_common::ctrl_c(), Upgrades::Lean).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server error: {error}");
            ExitCode::FAILURE
        }
    }
}
