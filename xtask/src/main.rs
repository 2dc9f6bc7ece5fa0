//! Project tasks, run as `cargo xtask <task>` (see `.cargo/config.toml`).
//!
//! - `test-all`: everything CI checks: formatting, clippy, tests, doc tests, docs, examples.
//! - `deny`: supply-chain checks.
//! - `e2e`: the examples in a real browser.
//! - `autobahn`: the Autobahn TestSuite against every example, compared with `autobahn/expected`.
//! - `bench`: the benchmark scenarios against our examples and the baselines.
//! - `fuzz`: the cargo-fuzz targets, each for a bounded time.
//! - `mem`: server memory per idle connection, per example.
//! - `package`: every publishable crate packages.
//! - `links`: every relative link in the Markdown files resolves.

mod autobahn;
mod bench;
mod bench_cluster;
mod bench_deflate;
mod bench_harness;
mod bench_report;
mod bench_topics;
mod deny;
mod e2e;
mod examples;
mod fuzz;
mod links;
mod mem;
mod package;
mod test_all;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test-all    fmt --check, clippy -D warnings, all tests, doc tests, rustdoc -D warnings,
              examples build, package, links, deny, autobahn, fuzz, bench --quick, e2e;
              prints a summary (ok, FAIL or skipped per step) and fails if any step fails
              (under CI=true a skipped step fails)
  package     cargo package for every publishable crate (metadata checked first)
  links       every relative link in the repository's *.md files resolves
  deny        cargo deny check bans licenses sources (advisories: see the README)
  e2e         the examples in headless Chromium (skipped loudly without it, except with
              CI=true)
  autobahn [--bless] [--release] [--full]
              the Autobahn TestSuite cases (kosoku) against every example's /ws/echo; fails
              on any change from autobahn/expected.json (--bless rewrites it)
  bench [--quick] [SERVER..] | bench cluster | bench s8 | bench --report
              the eight scenarios (S1-S8: fan-out, latency, memory, slow client, SSE,
              keepalive, cross-node, topics) against every example and the baselines (floor,
              naive tokio-tungstenite, gorilla, node ws, uWebSockets.js); writes bench/results/ (--quick: tiny
              sizes, to target/bench/; cluster: only S7; s8: only S8; --report: rewrites
              results.md and plot.svg from results.json). Method: bench/README.md
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
        Some("package") => package::run(),
        Some("links") => links::run(),
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

/// Set by `test-all` for each step: the file in which a task notes that it skipped.
pub(crate) const SKIPPED_FILE: &str = "XTASK_SKIPPED_FILE";

/// Whether we run under CI (`CI=true` or `CI=1`), where nothing may be skipped.
pub(crate) fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A task (or part of one) that cannot run on this machine: a failure under CI; elsewhere a
/// loud message, and a note in [`SKIPPED_FILE`] so that `test-all` reports the step skipped.
pub(crate) fn skip(task: &str, reason: &str) -> Result<(), String> {
    if in_ci() {
        return Err(format!("{task}: {reason} (required under CI)"));
    }
    eprintln!("\n!!! {task} SKIPPED: {reason}. CI runs it. !!!\n");
    if let Some(file) = env::var_os(SKIPPED_FILE) {
        use std::io::Write as _;
        let noted = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| writeln!(f, "{task}: {reason}"));
        if let Err(e) = noted {
            eprintln!("xtask: could not note the skip for test-all: {e}");
        }
    }
    Ok(())
}
