//! `cargo run -p example-actix --bin example-actix-native`: the example with upgrades on
//! actix-web's handler path.

use example_actix::Upgrades;
use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    example_actix::main("example-actix-native", Upgrades::Native).await
}
