//! `shutdown_signal` resolves on SIGTERM and on SIGINT, sent to this test process for real;
//! the handlers are in place as soon as it is called, before it is first polled.
#![cfg(unix)]
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(20);

fn send(signal: &str) {
    let pid = std::process::id().to_string();
    let status = Command::new("kill")
        .args([signal, pid.as_str()])
        .status()
        .unwrap();
    assert!(status.success());
}

// One test for both signals: they are process-wide, so two tests running in one process at
// once would see each other's.
#[tokio::test]
async fn sigterm_and_sigint_each_resolve_it() {
    for signal in ["-TERM", "-INT"] {
        let stop = hub_tokio::shutdown_signal();
        // sent before the future is polled: the handler is already installed, so the process
        // lives and the future still resolves
        send(signal);
        tokio::time::timeout(GUARD, stop)
            .await
            .unwrap_or_else(|_| panic!("{signal} did not resolve the shutdown signal"));
    }
}
