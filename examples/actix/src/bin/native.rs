//! `cargo run -p example-actix --bin example-actix-native`: the example with upgrades on
//! actix-web's handler path.

use example_common::{App, Settings};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    example_common::init_tracing();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match std::net::TcpListener::bind(settings.addr) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", settings.addr);
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(settings.addr);
    tracing::info!("example-actix-native listening on http://{addr}/");
    let app = App::new(settings.hub_config());
    match example_actix::run_with(
        listener,
        app,
        example_common::ctrl_c(),
        example_actix::Upgrades::Native,
    )
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
