//! S7, cross-node fan-out: the chat of `example-hyper` on one node, on one node through Redis,
//! and across two nodes joined by Redis (the publisher on one, every receiver on the other),
//! with the same load generator as the other scenarios. CPU is the sum over every process of
//! the topology (the nodes and redis-server, all pinned to core 0), per delivery; latency is
//! open loop. The single in-memory node, measured in the same run, is the baseline.

use crate::bench::{loadgen_at, pinned, start, Server};
use crate::bench_report::{cell, records};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SERVER: Server = Server::Ours("example-hyper");
const TOPOLOGIES: [&str; 3] = ["1 node", "1 node + Redis", "2 nodes + Redis"];

/// Sizes, from the main plan.
pub(crate) struct Plan {
    pub(crate) clients: usize,
    pub(crate) seconds: f64,
    pub(crate) latency_clients: usize,
    pub(crate) latency_seconds: f64,
}

/// A redis-server of the bench's own, on a free port; killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = pinned(0, "redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        let redis = Redis { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(10)); // polling a port: nothing to await
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Measures every topology; skips loudly without redis-server (fails under CI).
pub(crate) fn run(plan: &Plan, records: &mut Vec<Value>) -> Result<(), String> {
    if !crate::have("redis-server") {
        return crate::skip("bench S7 (cluster)", "redis-server not found on PATH");
    }
    let redis = Redis::start()?;
    let redis_pid = redis.child.id().to_string();
    for topology in TOPOLOGIES {
        let env: &[(&str, &str)] = &[("REDIS_URL", &redis.url())];
        let env = if topology == "1 node" { &[] } else { env };
        // the examples join the cluster before they print their address
        let receiving = start(SERVER, env)?;
        let publishing = match topology {
            "2 nodes + Redis" => Some(start(SERVER, env)?),
            _ => None,
        };
        let mut pids = receiving.child.id().to_string();
        if let Some(p) = &publishing {
            pids = format!("{pids},{}", p.child.id());
        }
        if topology != "1 node" {
            pids = format!("{pids},{redis_pid}");
        }
        let pub_addr = publishing.as_ref().map_or(receiving.addr, |p| p.addr);
        let mut measure = |mode: &str, mut params: Value| {
            params["pub-addr"] = json!(pub_addr.to_string());
            let figures = loadgen_at(receiving.addr, &pids, mode, &params)?;
            params["topology"] = json!(topology);
            eprintln!("  {} S7 {params}: {figures}", SERVER.name());
            records.push(
                json!({"server": SERVER.name(), "ours": true, "scenario": "S7",
                "params": params, "figures": figures}),
            );
            Ok::<(), String>(())
        };
        for batch in [1, 16] {
            measure(
                "fanout",
                json!({"clients": plan.clients, "size": 64, "batch": batch,
                    "seconds": plan.seconds}),
            )?;
        }
        measure(
            "latency",
            json!({"clients": plan.latency_clients, "size": 64, "rate": 50,
                "seconds": plan.latency_seconds}),
        )?;
    }
    Ok(())
}

/// The S7 table: each topology against the single in-memory node.
pub(crate) fn markdown(results: &Value) -> String {
    let s7: Vec<&Value> = records(results)
        .iter()
        .filter(|r| r["scenario"] == "S7")
        .collect();
    let Some(first) = s7.first() else {
        return String::new();
    };
    let figure = |topology: &str, batch: Option<u64>, key: &str| {
        s7.iter()
            .find(|r| {
                r["params"]["topology"] == topology
                    && r["figures"][key].is_number()
                    && batch.is_none_or(|b| r["params"]["batch"] == b)
            })
            .and_then(|r| r["figures"][key].as_f64())
    };
    let times = |v: Option<f64>, base: Option<f64>| match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{v:.2} ({:.2}×)", v / b),
        _ => cell(v, 2),
    };
    let mut md = format!(
        "\n### S7 cross-node fan-out ({}, 64 B, {} clients on the receiving node; CPU of every \
         process of the topology per delivery, × the single in-memory node)\n\n",
        first["server"].as_str().unwrap_or("?"),
        first["params"]["clients"]
    );
    md.push_str(
        "| topology | µs/delivery B=1 | µs/delivery B=16 | deliveries/s B=16 | p50 ms | p99 ms \
         | p99 added (ms) |\n|---|---|---|---|---|---|---|\n",
    );
    let base = |batch: Option<u64>, key: &str| figure(TOPOLOGIES[0], batch, key);
    for topology in TOPOLOGIES {
        let per = |b: u64| {
            let key = "cpu_us_per_delivery";
            times(figure(topology, Some(b), key), base(Some(b), key))
        };
        let p99 = figure(topology, None, "p99_us");
        let added = p99.zip(base(None, "p99_us")).map(|(v, b)| (v - b) / 1000.0);
        let _ = writeln!(
            md,
            "| {topology} | {} | {} | {} | {} | {} | {} |",
            per(1),
            per(16),
            cell(figure(topology, Some(16), "deliveries_per_s"), 0),
            cell(figure(topology, None, "p50_us").map(|u| u / 1000.0), 2),
            cell(p99.map(|u| u / 1000.0), 2),
            cell(added, 2),
        );
    }
    md
}
