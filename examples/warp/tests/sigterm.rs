//! SIGTERM drains the example-warp process as Ctrl-C does: WebSocket clients get 1001, event
//! streams end, `/healthz` answers 503 while draining, the process exits 0.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../../common/tests/support/sigterm.rs"]
mod sigterm;

#[test]
fn sigterm_drains_the_process() {
    sigterm::drains(
        env!("CARGO_BIN_EXE_example-warp"),
        sigterm::InFlight::Draining,
    );
}
