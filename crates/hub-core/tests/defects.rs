//! Regression tests for defects found in review (issue 16): each failed before its fix.
//! Timing ones run on tokio's paused clock; the races run many times on real threads.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{close_code, connect, connect_with, local_of, StdTimer, StillTransport};
use hub_core::{
    ConfigError, ConnectOptions, DisconnectReason, Hub, HubConfig, Incoming, Message, Outgoing,
    SendError, TransportError,
};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::Duration;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Answers every ping the driver has written so far with a pong.
fn answer_pings(tx: &common::Inject, peer: &common::Peer, answered: &mut usize) {
    while *answered < peer.pings() {
        let _ = tx.send(Ok(Incoming::Pong(Default::default())));
        *answered += 1;
    }
}

// 1. A slow async handler must not get a responsive client closed as silent.
#[tokio::test(start_paused = true)]
async fn a_responsive_client_survives_a_handler_longer_than_the_pong_wait() {
    let hub = Hub::new(); // ping 54 s, pong wait 60 s
    hub.on_message_async(|_hub, msg| async move {
        tokio::time::sleep(s(70)).await;
        let _ = msg.client.send("done");
    });
    let (tx, peer, task) = connect(&hub);
    tx.send(Ok(Incoming::Message(Message::text("work"))))
        .unwrap();
    let mut answered = 0;
    // The peer answers each ping within a second, for five minutes.
    for _ in 0..300 {
        tokio::time::sleep(s(1)).await;
        answer_pings(&tx, &peer, &mut answered);
    }
    assert!(!task.is_finished(), "closed: {:?}", peer.written());
    assert_eq!(peer.texts(), vec!["done"]);
    assert!(peer.pings() >= 5, "pings went on: {}", peer.pings());
    assert_eq!(hub.stats().disconnected(DisconnectReason::PeerSilent), 0);
}

#[tokio::test(start_paused = true)]
async fn a_gone_peer_is_still_detected_one_pong_wait_after_the_handler_ends() {
    let hub = Hub::new();
    hub.on_message_async(|_hub, _msg| async move {
        tokio::time::sleep(s(70)).await;
    });
    let started = tokio::time::Instant::now();
    let (tx, peer, task) = connect(&hub);
    tx.send(Ok(Incoming::Message(Message::text("work"))))
        .unwrap();
    // the peer never answers anything
    assert_eq!(task.await.unwrap(), DisconnectReason::PeerSilent);
    assert_eq!(started.elapsed(), s(70 + 60));
    assert_eq!(
        peer.written().iter().find_map(close_code),
        Some(1001),
        "closed with 1001"
    );
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(
        futures_util::task::noop_waker_ref(),
    ))
}

// 2. `Hub::closed` must not miss the last connection ending between its check and its wait.
#[test]
fn closed_never_misses_the_last_connection_ending() {
    const RUNS: usize = 20_000;
    let start = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let (to_dropper, connections) = std::sync::mpsc::channel();
    let dropper = {
        let (start, done) = (start.clone(), done.clone());
        std::thread::spawn(move || {
            for connection in connections {
                start.wait();
                drop(connection); // the last connection ends...
                done.wait();
            }
        })
    };
    for run in 0..RUNS {
        let hub = Hub::new();
        let connection = hub.connect(StillTransport, StdTimer, ConnectOptions::default());
        hub.shutdown();
        to_dropper.send(connection).unwrap();
        let mut closed = pin!(hub.closed());
        start.wait();
        // ...while this wait checks and subscribes: the wait starts a little later each run,
        // so its few instructions between check and subscribe sweep across the moment the
        // other thread's drop ends the connection
        for _ in 0..(run * 7) % 4_000 {
            std::hint::spin_loop();
        }
        let early = poll_once(closed.as_mut()).is_ready();
        done.wait();
        assert_eq!(hub.live_connections(), 0);
        assert!(
            early || poll_once(closed.as_mut()).is_ready(),
            "run {run}: closed() still waits after the last connection ended"
        );
    }
    drop(to_dropper);
    dropper.join().unwrap();
}

// 3. Exactly one departure per client when shutdown races close(), eviction and leaving.
#[test]
fn every_departure_is_counted_once_when_shutdown_races_close_and_eviction() {
    const RUNS: usize = 2_000;
    const CLIENTS: usize = 16;
    for run in 0..RUNS {
        let hub = Hub::with_config(HubConfig::default().queue_capacity(1)).unwrap();
        let connections: Vec<_> = (0..CLIENTS)
            .map(|_| hub.connect(StillTransport, StdTimer, ConnectOptions::default()))
            .collect();
        let clients: Vec<_> = connections.iter().map(|c| c.client().clone()).collect();
        let barrier = Arc::new(Barrier::new(3));
        let closer = {
            let (clients, barrier) = (clients.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for client in clients.iter().rev() {
                    client.close(1000, "bye");
                }
            })
        };
        let sender = {
            let (clients, barrier) = (clients.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut evicted = 0;
                for client in &clients {
                    for _ in 0..2 {
                        if let Err(SendError::Evicted) = client.send("x") {
                            evicted += 1;
                        }
                    }
                }
                evicted
            })
        };
        barrier.wait();
        hub.shutdown();
        closer.join().unwrap();
        let evicted_by_send = sender.join().unwrap();
        drop(connections); // every driver leaves
        let stats = hub.stats();
        let departures: u64 = DisconnectReason::ALL
            .iter()
            .map(|r| stats.disconnected(*r))
            .sum();
        assert_eq!(
            departures, CLIENTS as u64,
            "run {run}: {CLIENTS} clients, {departures} departures counted: {stats:?}"
        );
        assert!(
            stats.evicted() >= evicted_by_send,
            "run {run}: send reported {evicted_by_send} evictions, stats count {}",
            stats.evicted()
        );
        assert_eq!(hub.client_count(), 0);
    }
}

// 4. Settings that hung the runtime, panicked or left a ghost client.
#[test]
fn settings_that_cannot_work_are_refused_where_config_enters() {
    let zero = |c: HubConfig| Hub::with_config(c).map(|_| ()).unwrap_err();
    let d = HubConfig::default();
    assert_eq!(
        zero(d.clone().ping_interval(Duration::ZERO)),
        ConfigError::Zero("ping_interval")
    );
    assert_eq!(
        zero(d.clone().pong_wait(Duration::ZERO)),
        ConfigError::Zero("pong_wait")
    );
    assert_eq!(
        zero(d.clone().write_wait(Duration::ZERO)),
        ConfigError::Zero("write_wait")
    );
    assert_eq!(
        zero(d.clone().queue_capacity(0)),
        ConfigError::Zero("queue_capacity")
    );
    // set through the public field, not the setter: still refused
    let mut fields = d.clone();
    fields.queue_capacity = 0;
    assert!(Hub::with_config(fields).is_err());
    let late = d.clone().ping_interval(s(3)).pong_wait(s(2));
    assert!(matches!(
        zero(late),
        ConfigError::PingNotBeforePongWait { .. }
    ));
    let equal = d.ping_interval(s(60)).pong_wait(s(60));
    let message = zero(equal).to_string();
    assert!(message.contains("must be shorter"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn huge_durations_never_panic_nor_leave_a_ghost_client() {
    let huge = HubConfig::default()
        .ping_interval(Duration::MAX - s(1))
        .pong_wait(Duration::MAX)
        .write_wait(Duration::MAX)
        .shutdown_timeout(Duration::MAX);
    let hub = Hub::with_config(huge).unwrap();
    let (tx, peer, task) = connect(&hub);
    tx.send(Ok(Incoming::Message(Message::text("hi")))).unwrap();
    hub.broadcast("to everyone");
    tokio::time::sleep(s(3600)).await;
    assert!(!task.is_finished());
    assert_eq!(peer.texts(), vec!["to everyone"]);
    hub.shutdown();
    tokio::time::sleep(s(1)).await;
    assert_eq!(peer.written().iter().find_map(close_code), Some(1001));
    // the close handshake waits for the peer as long as the write wait says: here, for it
    tx.send(Ok(Incoming::Close(None))).unwrap();
    assert_eq!(task.await.unwrap(), DisconnectReason::Shutdown);
    assert_eq!(hub.live_connections(), 0);
    hub.closed().await;
}

#[test]
fn a_zero_heartbeat_means_none_and_does_not_pin_a_worker() {
    let (finished, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            let hub = Hub::new();
            let (_tx, peer, task) = connect_with(&hub, ConnectOptions::sse(Some(Duration::ZERO)));
            tokio::time::sleep(s(3600)).await;
            assert!(!task.is_finished());
            peer.pings()
        });
        let _ = finished.send(outcome);
    });
    // On the paused clock the hour passes at once; a spinning keepalive never returns.
    let heartbeats = done
        .recv_timeout(s(20))
        .expect("the connection's keepalive spun forever");
    assert_eq!(heartbeats, 0);
}

// 5. After a read error, a pending replay goes out before live messages (or is counted).
#[tokio::test(start_paused = true)]
async fn a_read_error_during_a_pending_replay_keeps_replay_then_live_order() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    for i in 1..=5 {
        hub.broadcast(format!("m{i}"));
    }
    let options = ConnectOptions::websocket().last_event_id(Some(2));
    let (tx, peer, task) = connect_with(&hub, options);
    hub.broadcast("m6"); // live, queued behind the replay of 3, 4, 5
    tx.send(Err(TransportError::Protocol("bad frame".into())))
        .unwrap();
    assert_eq!(task.await.unwrap(), DisconnectReason::ProtocolError);
    assert_eq!(peer.texts(), vec!["m3", "m4", "m5", "m6"]);
    assert_eq!(peer.written().iter().find_map(close_code), Some(1002));
    assert_eq!(hub.stats().dropped, 0);
}

#[tokio::test(start_paused = true)]
async fn a_replay_that_cannot_be_written_after_a_read_error_is_counted() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    for i in 1..=5 {
        hub.broadcast(format!("m{i}"));
    }
    let options = ConnectOptions::websocket().last_event_id(Some(2));
    let (tx, peer, task) = connect_with(&hub, options);
    peer.blocked.store(true, Ordering::SeqCst); // the socket takes nothing
    hub.broadcast("m6");
    tx.send(Err(TransportError::Protocol("bad frame".into())))
        .unwrap();
    assert_eq!(task.await.unwrap(), DisconnectReason::ProtocolError);
    assert!(peer.texts().is_empty());
    assert_eq!(hub.stats().dropped, 4, "3, 4, 5 and 6 were never written");
}

#[tokio::test(start_paused = true)]
async fn an_evicted_client_is_not_fed_its_replay_before_the_1008() {
    let hub = Hub::with_config(HubConfig::default().history(10).queue_capacity(1)).unwrap();
    for i in 1..=5 {
        hub.broadcast(format!("m{i}"));
    }
    let options = ConnectOptions::websocket().last_event_id(Some(0));
    let (_tx, peer, task) = connect_with(&hub, options);
    peer.blocked.store(true, Ordering::SeqCst);
    // two live messages against a queue of one: evicted before a byte of the replay went out
    hub.broadcast("m6");
    hub.broadcast("m7");
    peer.unblock();
    assert_eq!(task.await.unwrap(), DisconnectReason::SlowConsumer);
    assert_eq!(peer.texts(), Vec::<String>::new(), "{:?}", peer.written());
    assert_eq!(peer.written().iter().find_map(close_code), Some(1008));
    let stats = hub.stats();
    assert_eq!(stats.evicted(), 1);
    assert_eq!(
        stats.dropped,
        5 + 2,
        "the replay, m6, and m7 that found the queue full"
    );
}

// 6. `write_wait` measures no progress, not time since the first pending write.
#[tokio::test(start_paused = true)]
async fn a_slow_link_that_keeps_moving_is_not_dropped_as_stalled() {
    let hub = Hub::new();
    let (tx, peer, mut task) = connect(&hub);
    tokio::task::yield_now().await;
    peer.blocked.store(true, Ordering::SeqCst);
    // Two minutes of a saturated link: a broadcast every 3 s, the socket taking a little
    // every 4 s but never all of it; the peer keeps talking.
    for second in 1..=120u64 {
        tokio::time::sleep(s(1)).await;
        if second % 3 == 0 {
            hub.broadcast("tick");
        }
        if second % 4 == 0 {
            peer.trickle(100);
        }
        tx.send(Ok(Incoming::Message(Message::text("still here"))))
            .unwrap();
        if task.is_finished() {
            panic!("a moving link was dropped: {:?}", (&mut task).await);
        }
    }
    assert_eq!(hub.stats().disconnected(DisconnectReason::WriteStalled), 0);
    // The link stops moving: dropped one write wait (10 s) after its last progress.
    let stopped = tokio::time::Instant::now();
    let answering = async {
        loop {
            tokio::time::sleep(s(1)).await;
            let _ = tx.send(Ok(Incoming::Message(Message::text("still here"))));
        }
    };
    let reason = tokio::select! {
        reason = task => reason.unwrap(),
        () = answering => unreachable!(),
    };
    assert_eq!(reason, DisconnectReason::WriteStalled);
    assert_eq!(stopped.elapsed(), s(10));
}

// 7. History ids near u64::MAX are refused, never wrapped or panicking.
#[tokio::test]
async fn ids_near_the_top_are_refused_and_broadcast_goes_on() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    let local = local_of(&hub);
    for id in [u64::MAX - 1, u64::MAX, hub_core::MAX_ID + 1] {
        assert_eq!(
            local.deliver_with_id(None, id, Message::text("x")),
            Err(hub_core::HistoryError::OutOfRange { id })
        );
        assert!(local.remember(None, id, Message::text("x")).is_err());
    }
    assert_eq!(
        local.deliver_with_id(None, 7, Message::text("seven")),
        Ok(0)
    );
    assert!(matches!(
        local.deliver_with_id(None, 7, Message::text("again")),
        Err(hub_core::HistoryError::NotNewer { id: 7, newest: 7 })
    ));
    let (_tx, peer, _task) = connect_with(&hub, ConnectOptions::websocket().last_event_id(Some(6)));
    hub.broadcast("eight");
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let ids: Vec<_> = peer
        .written()
        .iter()
        .filter_map(|o| match o {
            Outgoing::Message { id, .. } => *id,
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![7, 8]);
}

// 8. A resume from inside a catch-up gap gets a `missed` notice.
#[tokio::test]
async fn a_resume_inside_a_recorded_gap_gets_a_missed_notice() {
    let hub = Hub::with_config(HubConfig::default().history(1000)).unwrap();
    let local = local_of(&hub);
    for id in 1..=100 {
        local
            .deliver_with_id(None, id, Message::text(format!("m{id}")))
            .unwrap();
    }
    // a backplane caught up after an outage but could not reach back past 1006
    local.record_gap(None, 1006);
    for id in 1006..=1008 {
        local
            .deliver_with_id(None, id, Message::text(format!("m{id}")))
            .unwrap();
    }
    let (_tx, peer, _task) =
        connect_with(&hub, ConnectOptions::websocket().last_event_id(Some(500)));
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let written = peer.written();
    assert!(
        matches!(
            written.first(),
            Some(Outgoing::Missed(m)) if m.last_event_id == 500 && m.first_available == Some(1006)
        ),
        "{written:?}"
    );
    assert_eq!(peer.texts(), vec!["m1006", "m1007", "m1008"]);
}

// One counting rule for `dropped` (issue 12): `send` and `broadcast` count alike.
#[test]
fn send_and_broadcast_count_an_eviction_alike() {
    let config = HubConfig::default().queue_capacity(2);
    let by_send = Hub::with_config(config.clone()).unwrap();
    let _held = by_send.connect(StillTransport, StdTimer, ConnectOptions::default());
    let client = _held.client().clone();
    assert!(client.send("1").is_ok() && client.send("2").is_ok());
    assert!(matches!(client.send("3"), Err(SendError::Evicted)));
    let by_broadcast = Hub::with_config(config).unwrap();
    let _held2 = by_broadcast.connect(StillTransport, StdTimer, ConnectOptions::default());
    for m in ["1", "2", "3"] {
        by_broadcast.broadcast(m);
    }
    for hub in [&by_send, &by_broadcast] {
        let stats = hub.stats();
        assert_eq!(stats.evicted(), 1);
        assert_eq!(
            stats.dropped, 3,
            "two queued and the one that found the queue full"
        );
        assert_eq!(hub.client_count(), 0);
    }
}
