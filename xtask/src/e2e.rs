//! `cargo xtask e2e`: the examples in a real browser (Debian's Chromium, driven by
//! playwright-core from npm; it never downloads a browser of its own), then round trips with
//! independent clients: Node `ws` and `eventsource`, Python `websockets` and `httpx-sse`, and
//! each example's `/metrics` after a scripted run, parsed by Python `prometheus_client`.
//!
//! Without Chromium it says so loudly and skips, except under `CI=true`, where a missing
//! browser is a failure (`.ci/run` installs it).

use crate::{cargo, have, project_root};
use std::path::PathBuf;
use std::process::Command;

/// The example binaries the browser visits.
const EXAMPLES: [&str; 3] = ["example-hyper", "example-warp", "example-actix"];

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").unwrap_or_default(),
        "/usr/bin/chromium".into(),
        "/usr/bin/chromium-browser".into(),
    ];
    candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub(crate) fn run() -> Result<(), String> {
    let Some(browser) = chromium() else {
        return crate::skip(
            "e2e",
            "Chromium not found (apt-get install chromium, or set CHROMIUM)",
        );
    };
    if !have("node") || !have("npm") {
        return Err("e2e: node and npm are required".into());
    }
    let dir = project_root().join("e2e");
    let npm_ready = ["playwright-core", "ws", "eventsource"]
        .iter()
        .all(|m| dir.join("node_modules").join(m).exists());
    if !npm_ready {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err("e2e: npm ci failed".into());
        }
    }
    let python_ready = Command::new("python3")
        .args([
            "-c",
            "import websockets, httpx, httpx_sse, prometheus_client",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ready {
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "-r", "requirements.txt"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("e2e: pip install -r e2e/requirements.txt failed".into());
        }
    }
    let mut build = cargo();
    build.args([
        "build",
        "--locked",
        "-p",
        "example-hyper",
        "-p",
        "example-warp",
        "-p",
        "example-actix",
    ]);
    if !build.status().map(|s| s.success()).unwrap_or(false) {
        return Err("e2e: building the examples failed".into());
    }
    let target = project_root().join("target/debug");
    let ok = Command::new("node")
        .arg("e2e.mjs")
        .args(EXAMPLES.iter().map(|e| target.join(e)))
        .current_dir(&dir)
        .env("CHROMIUM", browser)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err("e2e: browser tests failed".into())
    }
}
