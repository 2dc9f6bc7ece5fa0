//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `test-all`: everything CI checks: formatting, clippy, tests, doc tests, docs, examples.
//! - `deny`: supply-chain checks.
//! - `e2e`: the examples in a real browser.
//! - `autobahn`: the Autobahn TestSuite against every example, compared with `autobahn/expected`.
//! - `bench`: the benchmark scenarios against our examples and the baselines.
//! - `fuzz`: the cargo-fuzz targets, each for a bounded time.
//! - `mem`: server memory per idle connection, per example.

mod autobahn;
mod bench;
mod bench_cluster;
mod bench_report;
mod deny;
mod e2e;
mod examples;
mod fuzz;
mod mem;
mod test_all;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test-all    fmt --check, clippy -D warnings, all tests, doc tests, rustdoc -D warnings,
              examples build; prints a summary and fails if any step fails
  deny        cargo deny check bans licenses sources (advisories: see the README)
  e2e         the examples in headless Chromium (skipped loudly without it, except with
              CI=true)
  autobahn [--bless] [--release]
              the Autobahn TestSuite cases (kosoku) against every example's /ws/echo; fails
              on any change from autobahn/expected.json (--bless rewrites it)
  bench [--quick] [SERVER..] | bench --report
              fan-out, latency, memory, slow-client, SSE and keepalive scenarios against every
              example and the baselines (floor, naive tokio-tungstenite, gorilla, node ws);
              writes bench/results/ (--quick: tiny sizes, to target/bench/; --report:
              rewrites results.md and plot.svg from results.json)
  fuzz [SECONDS]
              each cargo-fuzz target in fuzz/ for SECONDS (60), from the committed corpus;
              installs cargo-fuzz when missing (stable toolchain, RUSTC_BOOTSTRAP=1)
  mem [N [EXAMPLE..]]
              server RSS per idle WebSocket connection (N = 10000) for each example (or
              those named), and after every client received one 8 KB message
";

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<(), String> {
    let task = env::args().nth(1);
    match task.as_deref() {
        Some("test-all") => test_all::run(),
        Some("e2e") => e2e::run(),
        Some("deny") => deny::run(),
        Some("autobahn") => autobahn::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("bench") => bench::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("fuzz") => fuzz::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("mem") => mem::run(&env::args().skip(2).collect::<Vec<_>>()),
        Some("help" | "--help" | "-h") | None => {
            eprint!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}\n{USAGE}")),
    }
}

/// The workspace root (this crate's parent directory).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cargo`, as the one running us (`$CARGO`), in the project root.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// Whether a program is on PATH.
pub(crate) fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
