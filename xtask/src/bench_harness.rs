//! What every bench task shares: the servers under test, the plan of sizes, starting a server
//! pinned to core 0 and running the load generator pinned to core 1. The scenario runners
//! (`bench`, `bench_cluster`) use it; the report (`bench_report`) needs none of it.

use crate::examples::{self, Running};
use crate::{have, project_root};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// A server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    /// One of our examples, by binary name.
    Ours(&'static str),
    Floor,
    Naive,
    Gorilla,
    NodeWs,
    /// uWebSockets.js (`bench/node/uws.mjs`, from the npm package
    /// `@trufflesuite/uws-js-unofficial`, which carries uWS's native binaries).
    Uws,
    /// S8's server on hub-hyper (`bench/src/bin/topic_hub.rs`).
    TopicHub,
}

impl Server {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::Ours(name) => name,
            Server::Floor => "floor",
            Server::Naive => "naive tokio-tungstenite",
            Server::Gorilla => "gorilla/websocket",
            Server::NodeWs => "node ws",
            Server::Uws => "uWebSockets.js",
            Server::TopicHub => "topic_hub",
        }
    }

    pub(crate) fn is_ours(self) -> bool {
        matches!(self, Server::Ours(_) | Server::TopicHub)
    }
}

/// Scenario sizes: the issue's, or tiny ones that only prove the harness works.
pub(crate) struct Plan {
    pub(crate) clients: usize,
    pub(crate) sizes: Vec<usize>,
    pub(crate) seconds: f64,
    pub(crate) latency_clients: usize,
    pub(crate) latency_seconds: f64,
    pub(crate) idle: usize,
    pub(crate) slow_clients: usize,
    pub(crate) slow_seconds: f64,
    pub(crate) slow_trials: u32,
    /// S1-deflate: trials of each pair (plain, deflate).
    pub(crate) deflate_trials: u32,
    pub(crate) keepalive: usize,
    pub(crate) keepalive_seconds: f64,
    /// Seconds memory settles before it is read.
    pub(crate) settle: f64,
    /// S8: seconds of server CPU at rest, with and without subscriptions.
    pub(crate) topic_rest_seconds: f64,
}

impl Plan {
    pub(crate) fn full() -> Self {
        Plan {
            clients: 1000,
            sizes: vec![64, 1024, 16 * 1024],
            seconds: 3.0,
            latency_clients: 1000,
            latency_seconds: 10.0,
            idle: 10_000,
            slow_clients: 100,
            slow_seconds: 3.0,
            slow_trials: 3,
            deflate_trials: 3,
            keepalive: 10_000,
            keepalive_seconds: 10.0,
            settle: 2.0,
            topic_rest_seconds: 10.0,
        }
    }

    pub(crate) fn quick() -> Self {
        Plan {
            clients: 50,
            sizes: vec![64],
            seconds: 0.3,
            latency_clients: 50,
            latency_seconds: 1.0,
            idle: 200,
            slow_clients: 20,
            slow_seconds: 0.3,
            slow_trials: 1,
            deflate_trials: 1,
            keepalive: 200,
            keepalive_seconds: 2.5,
            settle: 0.2,
            topic_rest_seconds: 0.5,
        }
    }
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` when set (cargo, run by us, builds there
/// too; relative to the project root), else `target/` in the project root.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

pub(crate) fn pinned(core: u32, program: impl Into<std::ffi::OsString>) -> Command {
    if have("taskset") && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2) {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(core.to_string()).arg(program.into());
        c
    } else {
        Command::new(program.into())
    }
}

pub(crate) fn start(server: Server, env: &[(&str, &str)]) -> Result<Running, String> {
    let root = project_root();
    let release = target_dir().join("release");
    let mut command = match server {
        Server::Ours(name) => pinned(0, release.join(name)),
        Server::Floor => pinned(0, release.join("floor")),
        Server::Naive => pinned(0, release.join("naive_hub")),
        Server::TopicHub => pinned(0, release.join("topic_hub")),
        Server::Gorilla => pinned(0, target_dir().join("bench/gorilla-hub")),
        Server::NodeWs => {
            let mut c = pinned(0, "node");
            c.arg(root.join("bench/node/hub.mjs"));
            c
        }
        Server::Uws => {
            let mut c = pinned(0, "node");
            c.arg(root.join("bench/node/uws.mjs"));
            c
        }
    };
    command
        .env("RUST_LOG", "warn,example_common=info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    examples::spawn(server.name(), command)
}

/// Runs the load generator once against the server at `addr` with `params` as its flags
/// (`{"clients": 10}` is `--clients 10`; `true` is a bare flag), counting the CPU of `pids`
/// (`P1,P2,..`); returns its figures.
pub(crate) fn loadgen_at(
    addr: std::net::SocketAddr,
    pids: &str,
    scenario: &str,
    params: &Value,
) -> Result<Value, String> {
    let mut command = pinned(1, target_dir().join("release/loadgen"));
    command
        .arg(scenario)
        .args(["--addr", &addr.to_string()])
        .args(["--pid", pids]);
    for (key, value) in params.as_object().into_iter().flatten() {
        match value {
            Value::Bool(true) => {
                command.arg(format!("--{key}"));
            }
            Value::Bool(false) => {}
            Value::String(v) => {
                command.arg(format!("--{key}")).arg(v);
            }
            other => {
                command.arg(format!("--{key}")).arg(other.to_string());
            }
        }
    }
    json_output(command, &format!("loadgen {scenario} {params}"))
}

/// Runs `command` to its end and parses the JSON object it prints; `what` names it in errors.
pub(crate) fn json_output(mut command: Command, what: &str) -> Result<Value, String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("{what} output: {e}"))
}

/// S7's topologies, in the order the runner measures and the report shows them.
pub(crate) const TOPOLOGIES: [&str; 3] = ["1 node", "1 node + Redis", "2 nodes + Redis"];
