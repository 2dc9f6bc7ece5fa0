//! `cargo run -p example-actix --bin example-actix-native`: the example with upgrades on
//! actix-web's handler path.

use example_actix::Upgrades;
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let (listener, app) = match example_common::startup("example-actix-native").await {
        Ok(started) => started,
        Err(code) => return code,
    };
    match example_actix::run_with(listener, app, example_common::ctrl_c(), Upgrades::Native).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server error: {error}");
            ExitCode::FAILURE
        }
    }
}
