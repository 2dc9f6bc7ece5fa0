//! `cargo run -p example-actix`: the chat, echo and event-stream example on actix-web
//! (WebSocket upgrades on the lean path).

use example_actix::Upgrades;
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    example_actix::main("example-actix", Upgrades::Lean).await
}
