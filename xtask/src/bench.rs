//! `cargo xtask bench [--quick]`: every scenario against every server in one run, with the
//! same load generator (`bench/src/bin/loadgen/`), the server pinned to core 0 and the
//! generator to core 1. Writes the markdown table, the JSON with every figure and the SVG plot
//! to `bench/results/` (a `--quick` run, for CI, writes to `target/bench/` instead).
//!
//! Servers: our examples (hyper, warp, actix lean, actix handler path) and the baselines under
//! `bench/`: the syscall floor, a naive tokio-tungstenite hub, a gorilla/websocket hub (Go and
//! gorilla from Debian, built offline in GOPATH mode), a Node `ws` hub and a uWebSockets.js hub
//! (its native binary, from npm). Missing toolchains are installed (`apt-get install
//! golang-go golang-github-gorilla-websocket-dev`, `npm ci`). Our servers also run
//! S1-deflate (`bench_deflate`). S7 (`bench_cluster`) and S8 (`bench_topics`) follow the
//! servers; `bench cluster` and `bench s8` run only theirs and keep the other figures of the
//! committed results.

use crate::bench_harness::{loadgen_at, start, target_dir, Plan, Server};
use crate::examples::{self, Profile, Running};
use crate::{cargo, have, project_root};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

const SERVERS: [Server; 9] = [
    Server::Ours("example-hyper"),
    Server::Ours("example-warp"),
    Server::Ours("example-actix"),
    Server::Ours("example-actix-native"),
    Server::Floor,
    Server::Naive,
    Server::Gorilla,
    Server::NodeWs,
    Server::Uws,
];

fn install_toolchains(servers: &[Server]) -> Result<(), String> {
    let root = project_root();
    if servers.contains(&Server::Gorilla) {
        let gorilla = PathBuf::from("/usr/share/gocode/src/github.com/gorilla/websocket");
        if !have("go") || !gorilla.exists() {
            eprintln!("bench: installing Go and gorilla/websocket from Debian");
            let ok = Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "golang-go",
                    "golang-github-gorilla-websocket-dev",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(
                    "bench: apt-get install golang-go golang-github-gorilla-websocket-dev failed"
                        .into(),
                );
            }
        }
        std::fs::create_dir_all(target_dir().join("bench")).map_err(|e| e.to_string())?;
        let ok = Command::new("go")
            .args(["build", "-o"])
            .arg(target_dir().join("bench/gorilla-hub"))
            .arg(root.join("bench/gorilla/hub.go"))
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", target_dir().join("bench/gocache"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("bench: building the gorilla hub failed".into());
        }
    }
    let node_modules = root.join("bench/node/node_modules");
    let node_missing = |server: Server, package: &str| {
        servers.contains(&server) && !node_modules.join(package).exists()
    };
    if node_missing(Server::NodeWs, "ws")
        || node_missing(Server::Uws, "@trufflesuite/uws-js-unofficial")
    {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root.join("bench/node"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("bench: npm ci in bench/node failed".into());
        }
    }
    examples::build(Profile::Release)?;
    let ok = cargo()
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "hub-bench",
            "--bins",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("bench: building the load generator and baselines failed".into())
    }
}

/// Runs the load generator once with `params` as its flags (`{"clients": 10}` is
/// `--clients 10`; `true` is a bare flag); returns its figures.
fn loadgen(running: &Running, scenario: &str, params: &Value) -> Result<Value, String> {
    let pid = running.child.id().to_string();
    loadgen_at(running.addr, &pid, scenario, params)
}

/// One server through every scenario it supports; each scenario on a fresh process.
fn run_server(server: Server, plan: &Plan, records: &mut Vec<Value>) -> Result<(), String> {
    let name = server.name();
    let mut measure = |running: &Running, scenario: &str, mode: &str, params: Value| {
        let figures = loadgen(running, mode, &params)?;
        eprintln!("  {name} {scenario} {params}: {figures}");
        records.push(
            json!({"server": name, "ours": server.is_ours(), "scenario": scenario,
            "params": params, "figures": figures}),
        );
        Ok::<(), String>(())
    };
    let (clients, seconds) = (plan.clients, plan.seconds);
    let latency = json!({"clients": plan.latency_clients, "size": 64, "rate": 50,
        "seconds": plan.latency_seconds});
    // S1: fan-out, closed loop
    let running = start(server, &[])?;
    for size in &plan.sizes {
        for batch in [1, 16] {
            let params =
                json!({"clients": clients, "size": size, "batch": batch, "seconds": seconds});
            measure(&running, "S1", "fanout", params)?;
        }
    }
    drop(running);
    // S2: latency, open loop
    measure(&start(server, &[])?, "S2", "latency", latency.clone())?;
    // S3 and S3b: idle memory, then after one 8 KB message
    let params = json!({"clients": plan.idle, "size": 8192, "settle": plan.settle});
    measure(&start(server, &[])?, "S3", "idle", params)?;
    // S4: slow-client isolation (not for the floor: it has no queue, so a stalled reader
    // blocks it outright)
    // blocks it outright). Three interleaved pairs, each on a fresh server: the report takes
    // the medians, so one noisy run on this shared machine does not decide the cost.
    if server != Server::Floor {
        for trial in 0..plan.slow_trials {
            for stalled in [false, true] {
                let params = json!({"clients": plan.slow_clients, "size": 4096, "batch": 16,
                    "seconds": plan.slow_seconds, "stalled": stalled, "trial": trial});
                measure(&start(server, &[])?, "S4", "fanout", params)?;
            }
        }
    }
    if !server.is_ours() {
        return Ok(());
    }
    // S1-deflate: 1 KiB JSON-like messages, with and without permessage-deflate
    let running = start(server, &[])?;
    for params in crate::bench_deflate::runs(plan) {
        measure(&running, crate::bench_deflate::SCENARIO, "fanout", params)?;
    }
    drop(running);
    // S5: S1 (64 B) and S2 over Server-Sent Events
    let running = start(server, &[])?;
    for batch in [1, 16] {
        let params = json!({"clients": clients, "size": 64, "batch": batch, "seconds": seconds,
            "sse": "/events/chat"});
        measure(&running, "S5", "fanout", params)?;
    }
    let mut params = latency;
    params["sse"] = json!("/events/chat");
    measure(&running, "S5-latency", "latency", params)?;
    drop(running);
    // S6: keepalive at scale, a ping every second
    let running = start(
        server,
        &[("PING_INTERVAL_MS", "1000"), ("PONG_WAIT_MS", "5000")],
    )?;
    let params = json!({"clients": plan.keepalive, "seconds": plan.keepalive_seconds});
    measure(&running, "S6", "keepalive", params)
}

/// Adds to `records` the earlier results' records of the server/scenario pairs not measured
/// again (so `cargo xtask bench cluster` refreshes S7 and keeps the rest); returns the
/// earlier results' machine, which the kept records ran on.
fn keep_the_rest(dir: &std::path::Path, records: &mut Vec<Value>) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("results.json")).ok()?;
    let old = serde_json::from_str::<Value>(&text).ok()?;
    let key = |r: &Value| (r["server"].to_string(), r["scenario"].to_string());
    let measured: std::collections::HashSet<_> = records.iter().map(key).collect();
    let kept: Vec<Value> = crate::bench_report::records(&old)
        .iter()
        .filter(|r| !measured.contains(&key(r)))
        .cloned()
        .collect();
    records.splice(0..0, kept);
    Some(old["machine"].clone()).filter(|m| !m.is_null())
}

/// Rewrites `bench/results/results.md` and `plot.svg` from `results.json` (after a change to
/// the report, without measuring again).
#[allow(clippy::print_stdout)] // the table is this task's output
fn report_again() -> Result<(), String> {
    let dir = project_root().join("bench/results");
    let text = std::fs::read_to_string(dir.join("results.json")).map_err(|e| e.to_string())?;
    let results: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let markdown = crate::bench_report::markdown(&results);
    std::fs::write(dir.join("results.md"), &markdown).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("plot.svg"), crate::bench_report::svg(&results))
        .map_err(|e| e.to_string())?;
    print!("{markdown}");
    Ok(())
}

#[allow(clippy::print_stdout)] // the table is this task's output
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--report") {
        return report_again();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let servers: Vec<Server> = SERVERS
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| s.name().contains(o)))
        .collect();
    let plan = if quick { Plan::quick() } else { Plan::full() };
    install_toolchains(&servers)?;
    let mut records = Vec::new();
    for server in &servers {
        eprintln!("bench: {}", server.name());
        run_server(*server, &plan, &mut records)?;
    }
    if only.is_empty() || only.iter().any(|o| "cluster".contains(o)) {
        eprintln!("bench: cluster");
        crate::bench_cluster::run(&plan, &mut records)?;
    }
    if only.is_empty() || only.iter().any(|o| ["s8", "topics"].contains(o)) {
        eprintln!("bench: topics (S8)");
        crate::bench_topics::run(&plan, &mut records)?;
    }
    let out_dir = if quick {
        target_dir().join("bench")
    } else {
        project_root().join("bench/results")
    };
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let mut machine = crate::bench_report::machine();
    if !quick && !only.is_empty() {
        // a partial run replaces only what it measured in the committed results; the header
        // keeps the machine of the figures kept, and each new record names its own
        for record in &mut records {
            record["machine"] = machine.clone();
        }
        if let Some(earlier) = keep_the_rest(&out_dir, &mut records) {
            machine = earlier;
        }
    }
    let results = json!({"machine": machine, "quick": quick, "records": records});
    let markdown = crate::bench_report::markdown(&results);
    let svg = crate::bench_report::svg(&results);
    let write = |file: &str, text: &str| {
        std::fs::write(out_dir.join(file), text).map_err(|e| format!("{file}: {e}"))
    };
    write(
        "results.json",
        &serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?,
    )?;
    write("results.md", &markdown)?;
    write("plot.svg", &svg)?;
    print!("{markdown}");
    eprintln!(
        "bench: wrote results.md, results.json and plot.svg to {}",
        out_dir.display()
    );
    Ok(())
}
