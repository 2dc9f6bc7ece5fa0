//! The connection driver on a virtual clock (tokio's paused time) with an in-memory transport:
//! hours of keepalive run in milliseconds, write stalls and shutdown deadlines included.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{close_code, connect};
use hub_core::{CloseCode, DisconnectReason, Hub, HubConfig, Incoming, Message, Outgoing};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn silent_peer_is_pinged_at_54s_and_dropped_at_60s() {
    let hub = Hub::new();
    let started = tokio::time::Instant::now();
    let (_tx, peer, task) = connect(&hub);
    let reason = task.await.unwrap();
    assert_eq!(reason, DisconnectReason::PeerSilent);
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    let written = peer.written.lock().unwrap().clone();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(
        written[0],
        (Duration::from_secs(54), Outgoing::Ping(Default::default()))
    );
    assert_eq!(close_code(&written[1].1), Some(CloseCode::GOING_AWAY.0));
    assert_eq!(hub.client_count(), 0);
    assert_eq!(hub.stats().disconnected(DisconnectReason::PeerSilent), 1);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_pongs_survives_ten_simulated_hours() {
    let hub = Hub::new();
    let real = std::time::Instant::now();
    let (tx, peer, task) = connect(&hub);
    // The peer answers each ping within ten seconds (the pong wait is 60 s).
    let mut answered = 0;
    let end = tokio::time::Instant::now() + Duration::from_secs(10 * 3600);
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let pings = peer.pings();
        while answered < pings {
            tx.send(Ok(Incoming::Pong(Default::default()))).unwrap();
            answered += 1;
        }
    }
    assert!(!task.is_finished(), "a healthy peer was dropped");
    assert_eq!(peer.pings(), 10 * 3600 / 54);
    assert_eq!(hub.client_count(), 1);
    // ten hours of virtual time in well under a few seconds of real time
    assert!(real.elapsed() < Duration::from_secs(30));
    drop(tx); // the peer goes away
    assert_eq!(task.await.unwrap(), DisconnectReason::PeerClosed);
}

#[tokio::test(start_paused = true)]
async fn data_from_the_peer_counts_as_life_without_pongs() {
    let hub = Hub::new();
    let (tx, _peer, task) = connect(&hub);
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_secs(30)).await;
        tx.send(Ok(Incoming::Message(Message::text("hi")))).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(!task.is_finished());
    assert_eq!(hub.stats().messages_in, 200);
}

#[tokio::test(start_paused = true)]
async fn a_write_blocked_for_10s_drops_the_connection() {
    let hub = Hub::new();
    let (_tx, peer, task) = connect(&hub);
    tokio::task::yield_now().await;
    peer.blocked.store(true, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    hub.broadcast("stuck");
    assert_eq!(task.await.unwrap(), DisconnectReason::WriteStalled);
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(hub.stats().dropped, 1, "the undelivered message is counted");
}

#[tokio::test(start_paused = true)]
async fn keepalive_settings_are_honoured() {
    let hub = Hub::with_config(
        HubConfig::default()
            .ping_interval(Duration::from_secs(5))
            .pong_wait(Duration::from_secs(12)),
    )
    .unwrap();
    let started = tokio::time::Instant::now();
    let (_tx, peer, task) = connect(&hub);
    assert_eq!(task.await.unwrap(), DisconnectReason::PeerSilent);
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    assert_eq!(peer.pings(), 2); // at 5 s and 10 s
}

#[tokio::test(start_paused = true)]
async fn shutdown_flush_is_bounded_by_the_shutdown_timeout() {
    let hub =
        Hub::with_config(HubConfig::default().shutdown_timeout(Duration::from_secs(3))).unwrap();
    let (_tx, peer, task) = connect(&hub);
    tokio::task::yield_now().await;
    peer.blocked.store(true, Ordering::SeqCst);
    hub.broadcast("queued");
    let started = tokio::time::Instant::now();
    hub.shutdown();
    assert_eq!(hub.client_count(), 0);
    assert_eq!(task.await.unwrap(), DisconnectReason::Shutdown);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(hub.stats().dropped, 1, "the unflushed message is counted");
    hub.closed().await;
}

#[tokio::test(start_paused = true)]
async fn ping_goes_out_ahead_of_queued_data() {
    let hub = Hub::with_config(HubConfig::default().ping_interval(Duration::from_secs(1))).unwrap();
    let (_tx, peer, _task) = connect(&hub);
    tokio::task::yield_now().await;
    peer.blocked.store(true, Ordering::SeqCst);
    for i in 0..100 {
        hub.broadcast(format!("m{i}"));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // the ping is now due
    peer.unblock();
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let written = peer.written();
    assert!(
        matches!(written.first(), Some(Outgoing::Ping(_))),
        "first frame: {:?}",
        written.first()
    );
    assert_eq!(written.len(), 101);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_closes_its_client_with_1011_and_spares_the_hub() {
    let hub = Hub::new();
    hub.on_message(|_hub, _msg| panic!("handler bug"));
    let (tx, peer, task) = connect(&hub);
    let (_tx2, _peer2, other) = connect(&hub);
    tx.send(Ok(Incoming::Message(Message::text("boom"))))
        .unwrap();
    drop(tx);
    assert_eq!(task.await.unwrap(), DisconnectReason::ClosedByServer);
    assert_eq!(peer.written().iter().find_map(close_code), Some(1011));
    assert_eq!(hub.client_count(), 1);
    assert!(!other.is_finished());
}
