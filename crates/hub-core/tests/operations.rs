//! Operations: lifecycle hooks, per-client rate limits, the connection limit and the spread
//! shutdown, on the virtual clock.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{close_code, connect, connect_with, Peer};
use hub_core::{
    ConnectOptions, DisconnectReason, Hub, HubConfig, Incoming, Message, RateLimit,
    RateLimitPolicy, Rejection,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Lets every task run (the virtual clock does not move).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn closes(peer: &Peer) -> Vec<u16> {
    peer.written().iter().filter_map(close_code).collect()
}

type Log = Arc<Mutex<Vec<String>>>;

fn logging_hooks(hub: &Hub) -> Log {
    let log: Log = Arc::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    hub.on_connect(move |_, client| l1.lock().unwrap().push(format!("connect {}", client.id())));
    hub.on_message(move |_, msg| {
        l2.lock()
            .unwrap()
            .push(format!("message {}", msg.client.id()))
    });
    hub.on_disconnect(move |hub, client, reason| {
        assert!(!client.is_connected(), "it has left when the hook runs");
        assert!(hub.client(client.id()).is_none());
        l3.lock()
            .unwrap()
            .push(format!("disconnect {} {}", client.id(), reason.as_str()))
    });
    log
}

#[tokio::test(start_paused = true)]
async fn hooks_run_once_each_in_order_whatever_ends_the_client() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(1)).unwrap();
    let log = logging_hooks(&hub);
    // a peer that talks then leaves
    let (tx, _peer, task) = connect(&hub);
    tx.send(Ok(Incoming::Message(Message::text("hi")))).unwrap();
    tx.send(Ok(Incoming::Close(None))).unwrap();
    assert_eq!(task.await.unwrap(), DisconnectReason::PeerClosed);
    // an evicted one
    let (_tx2, peer2, task2) = connect(&hub);
    settle().await;
    peer2.blocked.store(true, Ordering::SeqCst);
    let evicted = hub.clients()[0].clone();
    for _ in 0..3 {
        let _ = evicted.send("x");
    }
    peer2.unblock();
    assert_eq!(task2.await.unwrap(), DisconnectReason::SlowConsumer);
    // a silent one (the keepalive closes it), then one at shutdown
    let (_tx3, _peer3, task3) = connect(&hub);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(task3.await.unwrap(), DisconnectReason::PeerSilent);
    let (_tx4, _peer4, task4) = connect(&hub);
    settle().await;
    hub.shutdown();
    assert_eq!(task4.await.unwrap(), DisconnectReason::Shutdown);
    let log = log.lock().unwrap().clone();
    let ids: Vec<String> = log
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    for id in ids.iter().collect::<std::collections::BTreeSet<_>>() {
        let mine: Vec<&String> = log
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some(id))
            .collect();
        assert!(mine.first().unwrap().starts_with("connect"), "{mine:?}");
        assert!(mine.last().unwrap().starts_with("disconnect"), "{mine:?}");
        assert_eq!(mine.iter().filter(|l| l.starts_with("connect")).count(), 1);
        assert_eq!(
            mine.iter().filter(|l| l.starts_with("disconnect")).count(),
            1
        );
    }
    assert_eq!(
        log.iter().filter(|l| l.starts_with("disconnect")).count(),
        4,
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.ends_with("slow_consumer")));
    for reason in ["peer_closed", "slow_consumer", "peer_silent", "shutdown"] {
        assert!(log.iter().any(|l| l.ends_with(reason)), "{reason}: {log:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_disconnect_hook_is_told_the_reason_the_departure_was_counted_under() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(1)).unwrap();
    let log = logging_hooks(&hub);
    // evicted while its socket takes nothing: the driver cannot act on the eviction before
    // the write wait gives up on the socket, but the client left as a slow consumer
    let (_tx, peer, task) = connect(&hub);
    settle().await;
    peer.blocked.store(true, Ordering::SeqCst);
    let evicted = hub.clients()[0].clone();
    for _ in 0..3 {
        let _ = evicted.send("x");
    }
    assert_eq!(task.await.unwrap(), DisconnectReason::SlowConsumer);
    // and one that closes itself while a spread shutdown's turn is still to come
    let (txs, _peers): (Vec<_>, Vec<_>) = (0..3)
        .map(|_| {
            let (tx, peer, task) = connect(&hub);
            (tx, (peer, task))
        })
        .unzip();
    settle().await;
    hub.shutdown();
    txs[2].send(Ok(Incoming::Close(None))).unwrap();
    hub.closed().await;
    let stats = hub.stats();
    assert_eq!(stats.disconnected(DisconnectReason::SlowConsumer), 1);
    assert_eq!(stats.disconnected(DisconnectReason::Shutdown), 3);
    let log = log.lock().unwrap().clone();
    let told = |reason: &str| log.iter().filter(|l| l.ends_with(reason)).count();
    assert_eq!((told("slow_consumer"), told("shutdown")), (1, 3), "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn an_async_connect_hook_runs_before_the_first_message_is_handled() {
    let hub = Hub::new();
    let log: Log = Arc::default();
    let (l1, l2) = (log.clone(), log.clone());
    hub.on_connect_async(move |_, _| {
        let log = l1.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(5)).await; // a slow lookup
            log.lock().unwrap().push("connected".into());
        }
    });
    hub.on_message(move |_, _| l2.lock().unwrap().push("message".into()));
    let (tx, peer, _task) = connect(&hub);
    tx.send(Ok(Incoming::Message(Message::text("early"))))
        .unwrap();
    settle().await;
    assert!(
        log.lock().unwrap().is_empty(),
        "the message waits for the hook"
    );
    hub.broadcast("meanwhile"); // writes go on while the hook runs
    settle().await;
    assert_eq!(common::texts_of(&peer.written()), ["meanwhile"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(*log.lock().unwrap(), ["connected", "message"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_connect_hook_closes_its_client_with_1011_and_nothing_else() {
    let hub = Hub::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    hub.on_connect(move |_, _| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("first one fails");
        }
    });
    let (_tx1, peer1, task1) = connect(&hub);
    let (_tx2, peer2, _task2) = connect(&hub);
    assert_eq!(task1.await.unwrap(), DisconnectReason::ClosedByServer);
    settle().await;
    assert_eq!(closes(&peer1), [1011]);
    assert!(closes(&peer2).is_empty());
    assert_eq!(hub.client_count(), 1);
    assert_eq!(hub.stats().hook_panics, 1);
}

#[tokio::test(start_paused = true)]
async fn an_async_disconnect_hook_finishes_before_the_hub_is_closed() {
    let hub = Hub::new();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    hub.on_disconnect_async(move |_, _, reason| {
        let done = d.clone();
        async move {
            assert_eq!(reason, DisconnectReason::Shutdown);
            tokio::time::sleep(Duration::from_secs(2)).await; // saving the session
            done.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (_tx, _peer, task) = connect(&hub);
    settle().await;
    hub.shutdown();
    hub.closed().await;
    assert_eq!(done.load(Ordering::SeqCst), 1);
    assert_eq!(task.await.unwrap(), DisconnectReason::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_hands_its_async_disconnect_hook_to_the_spawner() {
    let hub = Hub::new();
    hub.set_spawner(|fut| {
        tokio::spawn(fut);
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    hub.on_disconnect_async(move |_, _, reason| {
        let tx = tx.lock().unwrap().take();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Some(tx) = tx {
                let _ = tx.send(reason);
            }
        }
    });
    let (_tx, _peer, task) = connect(&hub);
    settle().await;
    task.abort(); // as a server drops an SSE body whose client went away
    let _ = task.await;
    assert_eq!(rx.await.unwrap(), DisconnectReason::PeerClosed);
}

#[tokio::test(start_paused = true)]
async fn a_flooding_client_is_closed_within_a_second_and_others_are_untouched() {
    let hub =
        Hub::with_config(HubConfig::default().rate_limit(RateLimit::per_second(100))).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    hub.on_message(move |_, msg| {
        h.fetch_add(1, Ordering::SeqCst);
        let _ = msg.client.send(msg.message.clone()); // echo: the round trip
    });
    let (flood, flood_peer, flood_task) = connect(&hub);
    let (calm, calm_peer, _calm_task) = connect(&hub);
    settle().await;
    // 1,000 messages a second from one, 10 a second from the other
    let mut closed_at = None;
    for tick in 1..=1000u64 {
        tokio::time::sleep(ms(1)).await;
        let _ = flood.send(Ok(Incoming::Message(Message::text("spam"))));
        if tick % 100 == 0 {
            calm.send(Ok(Incoming::Message(Message::text(format!("calm {tick}")))))
                .unwrap();
        }
        settle().await;
        if closed_at.is_none() && !closes(&flood_peer).is_empty() {
            closed_at = Some(tick);
        }
    }
    let closed_at = closed_at.expect("the flooding client is closed");
    assert!(closed_at < 1000, "within a second: at {closed_at} ms");
    assert_eq!(closes(&flood_peer), [1008]);
    drop(flood);
    assert_eq!(flood_task.await.unwrap(), DisconnectReason::RateLimited);
    let calm_echoes = common::texts_of(&calm_peer.written());
    assert_eq!(
        calm_echoes.len(),
        10,
        "every round trip of the calm client: {calm_echoes:?}"
    );
    let stats = hub.stats();
    assert_eq!(stats.disconnected(DisconnectReason::RateLimited), 1);
    assert_eq!(stats.rate_limited, 1);
}

#[tokio::test(start_paused = true)]
async fn the_drop_policy_drops_and_counts_and_keeps_the_client() {
    let limit = RateLimit::per_second(10).policy(RateLimitPolicy::Drop);
    let hub = Hub::with_config(HubConfig::default().rate_limit(limit)).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    hub.on_message(move |_, _| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    let (tx, peer, _task) = connect(&hub);
    for _ in 0..25 {
        tx.send(Ok(Incoming::Message(Message::text("x")))).unwrap();
    }
    settle().await;
    assert_eq!(handled.load(Ordering::SeqCst), 10, "the burst");
    assert_eq!(hub.stats().rate_limited, 15);
    assert!(closes(&peer).is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.send(Ok(Incoming::Message(Message::text("later"))))
        .unwrap();
    settle().await;
    assert_eq!(handled.load(Ordering::SeqCst), 11);
    assert_eq!(hub.client_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn over_the_connection_limit_upgrades_get_503_and_nothing_connected_is_disturbed() {
    let hub = Hub::with_config(HubConfig::default().max_connections(2)).unwrap();
    assert!(Hub::with_config(HubConfig::default().max_connections(0)).is_err());
    let (_a, peer_a, _ta) = connect(&hub);
    let (_b, _peer_b, _tb) = connect(&hub);
    settle().await;
    let head = common::upgrade_head();
    let rejection = hub.accept(&head).unwrap_err();
    assert_eq!(rejection, Rejection::TooManyConnections);
    assert_eq!(rejection.status(), 503);
    assert!(rejection
        .headers()
        .iter()
        .any(|(name, _)| *name == "retry-after"));
    assert_eq!(hub.admit(&head).unwrap_err(), Rejection::TooManyConnections);
    // one that raced past the check is closed with 1013, never registered
    let (_c, peer_c, task_c) = connect(&hub);
    assert_eq!(task_c.await.unwrap(), DisconnectReason::Shutdown);
    assert_eq!(closes(&peer_c), [1013]);
    assert_eq!(hub.client_count(), 2);
    assert!(closes(&peer_a).is_empty());
    let stats = hub.stats();
    assert_eq!(stats.rejected(Rejection::TooManyConnections), 3);
    assert_eq!(stats.rejected_upgrades, 3);
    assert_eq!(stats.connections_total, 2, "the raced one never joined");
}

/// When each peer got its 1001, relative to the first.
fn close_times(
    peers: &[(
        common::Inject,
        Peer,
        tokio::task::JoinHandle<DisconnectReason>,
    )],
) -> Vec<Duration> {
    let mut times: Vec<Duration> = peers
        .iter()
        .map(|(_, peer, _)| {
            let written = peer.written.lock().unwrap();
            written
                .iter()
                .find(|(_, o)| close_code(o) == Some(1001))
                .map(|(at, _)| *at)
                .expect("every client gets 1001")
        })
        .collect();
    times.sort();
    let first = times[0];
    times.iter().map(|t| *t - first).collect()
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_spreads_its_closes_over_the_window() {
    let config = HubConfig::default().shutdown_spread(Duration::from_millis(100));
    let hub = Hub::with_config(config).unwrap();
    let peers: Vec<_> = (0..1000)
        .map(|_| connect_with(&hub, ConnectOptions::websocket()))
        .collect();
    settle().await;
    hub.shutdown();
    tokio::time::sleep(ms(200)).await;
    let times = close_times(&peers);
    let spread = *times.last().unwrap();
    assert!(
        spread >= ms(90) && spread <= ms(110),
        "spread over the window: {spread:?}"
    );
    // evenly: the first half of the clients closed in the first half of the window
    assert!(
        times[500] >= ms(40) && times[500] <= ms(60),
        "{:?}",
        times[500]
    );
    assert_eq!(hub.stats().disconnected(DisconnectReason::Shutdown), 1000);
}

#[tokio::test(start_paused = true)]
async fn a_few_clients_are_not_made_to_wait_by_the_spread() {
    let hub = Hub::new(); // the default window: 3 s
    let peers: Vec<_> = (0..3).map(|_| connect(&hub)).collect();
    settle().await;
    hub.shutdown();
    tokio::time::sleep(ms(10)).await;
    let times = close_times(&peers);
    assert!(
        *times.last().unwrap() <= ms(2),
        "at most 1 ms apart: {times:?}"
    );
}

/// A `MakeWriter` that keeps everything written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn every_event_of_a_connection_carries_its_hub_client_peer_and_route() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let hub = Hub::with_config(HubConfig::default().name("chat")).unwrap();
    let peer_addr: std::net::SocketAddr = "127.0.0.1:4242".parse().unwrap();
    let options = ConnectOptions::websocket()
        .peer(Some(peer_addr))
        .route("/ws/chat");
    let (tx, _peer, task) = connect_with(&hub, options);
    tx.send(Ok(Incoming::Close(None))).unwrap();
    task.await.unwrap();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let left = text
        .lines()
        .find(|l| l.contains("client left"))
        .expect("the departure is logged at debug level");
    for field in [
        "hub=chat",
        "client=1",
        "127.0.0.1:4242",
        "route=\"/ws/chat\"",
    ] {
        assert!(left.contains(field), "{field} in {left}");
    }
    assert!(
        !text.contains(" INFO "),
        "no info-level line per connection: {text}"
    );
}
