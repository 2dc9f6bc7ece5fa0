//! A hub with a real Redis backplane: its state and counters in the scrape, Up and then Down
//! after redis-server is killed, parsed by Python's prometheus_client.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{guard, scrape, serve, until, Parsed};
use hub_core::{BackplaneStats, Hub};
use hub_metrics::HubMetrics;
use hub_redis::{BackplaneState, RedisConfig};
use prometheus_client::registry::Registry;
use std::process::{Child, Command, Stdio};

/// A redis-server of this test's own on a free port; killed when dropped.
struct Redis(Child, u16);

impl Redis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required (apt-get install redis-server)");
        guard("redis-server to accept connections", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::task::yield_now().await;
            }
        })
        .await;
        Self(child, port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The backplane samples of `hub="node"`, written out independently of the crate's table.
fn assert_backplane(parsed: &Parsed, b: &BackplaneStats) {
    let hub = [("hub", "node")];
    let up = u64::from(b.state == BackplaneState::Up);
    for (name, value) in [
        ("hub_backplane_up", up),
        ("hub_backplane_published_total", b.published),
        ("hub_backplane_publish_failures_total", b.publish_failed),
        ("hub_backplane_dropped_total", b.dropped),
        ("hub_backplane_local_only_total", b.local_only),
        ("hub_backplane_received_total", b.received),
        ("hub_backplane_caught_up_total", b.caught_up),
        ("hub_backplane_catch_up_gaps_total", b.catch_up_gaps),
        ("hub_backplane_malformed_total", b.malformed),
        ("hub_backplane_disconnects_total", b.disconnects),
    ] {
        assert_eq!(parsed.value(name, &hub), Some(value as f64), "{name}");
    }
    for (state, label) in [
        (BackplaneState::Connecting, "connecting"),
        (BackplaneState::Up, "up"),
        (BackplaneState::Down, "down"),
    ] {
        assert_eq!(
            parsed.value("hub_backplane_state", &[("hub", "node"), ("state", label)]),
            Some(f64::from(u8::from(b.state == state))),
            "state {label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backplane_state_and_counters_are_scraped() {
    let redis = Redis::start().await;
    let node = Hub::new();
    let plain = Hub::new();
    let url = format!("redis://127.0.0.1:{}/", redis.1);
    let backplane = hub_redis::attach(&node, &url, RedisConfig::new("metrics")).unwrap();
    guard("the backplane up", backplane.until(BackplaneState::Up)).await;
    let mut registry = Registry::default();
    let metrics = HubMetrics::register(&mut registry);
    metrics.add("node", &node).unwrap();
    metrics.add("plain", &plain).unwrap();
    let addr = serve(Vec::new(), registry).await;

    node.broadcast("through redis");
    until("the publish", &node, |h| {
        h.stats().backplane.unwrap().published == 1
    })
    .await;
    let before = node.stats().backplane.unwrap();
    let parsed = scrape(addr).await;
    assert_eq!(node.stats().backplane.unwrap(), before);
    assert_eq!(before.state, BackplaneState::Up);
    assert_backplane(&parsed, &before);
    // a hub without a backplane has no backplane sample
    assert!(parsed
        .samples
        .keys()
        .all(|(name, labels)| !name.starts_with("hub_backplane") || labels["hub"] == "node"));

    drop(redis);
    guard("the backplane down", backplane.until(BackplaneState::Down)).await;
    node.broadcast("here only");
    until("the local delivery counted", &node, |h| {
        let b = h.stats().backplane.unwrap();
        b.local_only + b.publish_failed == 1
    })
    .await;
    let before = node.stats().backplane.unwrap();
    let parsed = scrape(addr).await;
    assert_eq!(node.stats().backplane.unwrap(), before);
    assert_eq!(before.state, BackplaneState::Down);
    assert!(before.disconnects >= 1);
    assert_backplane(&parsed, &before);
}
