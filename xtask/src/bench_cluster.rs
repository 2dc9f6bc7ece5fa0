//! S7, cross-node fan-out: the chat of `example-hyper` on one node, on one node through Redis,
//! and across two nodes joined by Redis (the publisher on one, every receiver on the other),
//! with the same load generator as the other scenarios. CPU is the sum over every process of
//! the topology (the nodes and redis-server, all pinned to core 0), per delivery; latency is
//! open loop. The single in-memory node, measured in the same run, is the baseline.

use crate::bench_harness::{loadgen_at, pinned, start, Plan, Server, TOPOLOGIES};
use serde_json::{json, Value};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SERVER: Server = Server::Ours("example-hyper");

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
