//! The chat of three servers on three frameworks (hyper, actix-web, warp), joined through a
//! real `redis-server` that the test starts on a free port, kills and restarts: a broadcast on
//! any node reaches every client of every node once, in order per publisher; with Redis gone
//! local delivery goes on; after a restart cross-node delivery comes back within 2 s; a client
//! resumes on another node; a node cut off alone, or joining late, catches up from the history.
//! Without redis-server on PATH the tests skip loudly, except under `CI=true`.
#![allow(clippy::unwrap_used, missing_docs)]

use futures_util::SinkExt;
use hub_redis::BackplaneState;
use hub_tests::redis::{
    a_and_b, a_and_b_with, node, until_published, while_b_is_cut_off, Admin, RedisServer,
};
use hub_tests::sse::{events, SseClient, ACCEPT};
use hub_tests::{connect, next_text, wait_hub, Adapter, GUARD};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_on_any_framework_reaches_every_client_of_every_node_once_in_order() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut nodes = Vec::new();
    for adapter in [Adapter::Hyper, Adapter::Actix, Adapter::Warp] {
        nodes.push(node(adapter, &redis).await);
    }
    // two clients on each node
    let mut clients = Vec::new();
    for (server, _) in &nodes {
        clients.push(connect(&server.url("/ws/chat")).await);
        clients.push(connect(&server.url("/ws/chat")).await);
        wait_hub(&server.app.chat, "two clients", |h| h.client_count() == 2).await;
    }
    const N: usize = 15;
    // the first client of each node publishes N messages, then a sentinel
    for i in 0..=N {
        for (n, publisher) in clients.iter_mut().step_by(2).enumerate() {
            let text = if i == N {
                format!("{n}-end")
            } else {
                format!("{n}-{i}")
            };
            publisher.send(Message::text(text)).await.unwrap();
        }
    }
    let expect = |n: usize| {
        (0..N)
            .map(|i| format!("{n}-{i}"))
            .chain([format!("{n}-end")])
            .collect::<Vec<_>>()
    };
    for (c, ws) in clients.iter_mut().enumerate() {
        let mut got: Vec<Vec<String>> = vec![Vec::new(); 3];
        while got
            .iter()
            .enumerate()
            .any(|(n, g)| g.last() != Some(&format!("{n}-end")))
        {
            let text = next_text(ws).await;
            let n: usize = text[..1].parse().unwrap();
            got[n].push(text);
        }
        for (n, g) in got.iter().enumerate() {
            assert_eq!(
                g,
                &expect(n),
                "client {c}: node {n}'s messages, once each, in order"
            );
        }
    }
    for (server, backplane) in &nodes {
        // each node received the other two nodes' messages once
        assert_eq!(
            backplane.stats().received,
            2 * (N as u64 + 1),
            "{:?}",
            server.adapter
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_keeps_local_delivery_and_a_restart_restores_cross_node_within_2_s() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let (a, a_backplane) = node(Adapter::Hyper, &redis).await;
    let (b, _) = node(Adapter::Warp, &redis).await;
    let (mut a1, mut a2) = (
        connect(&a.url("/ws/chat")).await,
        connect(&a.url("/ws/chat")).await,
    );
    let mut b1 = connect(&b.url("/ws/chat")).await;
    wait_hub(&a.app.chat, "two clients", |h| h.client_count() == 2).await;
    wait_hub(&b.app.chat, "one client", |h| h.client_count() == 1).await;

    redis.kill();
    tokio::time::timeout(GUARD, a_backplane.until(BackplaneState::Down))
        .await
        .expect("node A never noticed Redis go");
    a1.send(Message::text("local while down")).await.unwrap();
    assert_eq!(next_text(&mut a2).await, "local while down");
    assert_eq!(next_text(&mut a1).await, "local while down");

    redis.restart().await;
    let restarted = Instant::now();
    // probes until B's client gets one: the time to cross-node recovery
    let recovered = tokio::time::timeout(GUARD, async {
        let mut i = 0;
        loop {
            a1.send(Message::text(format!("probe {i}"))).await.unwrap();
            i += 1;
            // What was broadcast while Redis was away stayed local (at-most-once, counted
            // in local_only); the first probe to cross is the mark.
            if let Ok(text) =
                tokio::time::timeout(Duration::from_millis(100), next_text(&mut b1)).await
            {
                assert!(text.starts_with("probe"), "{text:?} crossed");
                return restarted.elapsed();
            }
        }
    })
    .await
    .expect("cross-node delivery never came back");
    eprintln!("cross-node delivery back {recovered:?} after Redis restarted");
    assert!(recovered < Duration::from_secs(2), "took {recovered:?}");
    let stats = a_backplane.stats();
    assert!(stats.disconnects >= 1);
    assert!(stats.local_only >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_node_with_last_event_id_without_loss() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, _) = node(Adapter::Hyper, &redis).await;
    let (b, _) = node(Adapter::Actix, &redis).await;
    let (c, _) = node(Adapter::Warp, &redis).await;
    // a control subscriber on C sees the cluster's order and ids
    let mut control = SseClient::get(c.addr, "/events/chat", &[ACCEPT]).await;
    let mut first = SseClient::get(a.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(&c.app.chat, "the control", |h| h.client_count() == 1).await;
    wait_hub(&a.app.chat, "the subscriber", |h| h.client_count() == 1).await;
    // broadcasts from all three nodes
    let hubs = [&a.app.chat, &b.app.chat, &c.app.chat];
    for i in 0..12 {
        hubs[i % 3].broadcast(format!("m{i}"));
    }
    let seen = events(&mut first, 5).await;
    drop(first); // gone after 5 events, the rest unread
    wait_hub(&a.app.chat, "the subscriber to leave", |h| {
        h.client_count() == 0
    })
    .await;
    for i in 12..18 {
        hubs[i % 3].broadcast(format!("m{i}"));
    }
    let all = events(&mut control, 18).await;
    let mut texts: Vec<_> = all.iter().map(|(_, d)| d.clone()).collect();
    texts.sort_by_key(|t| t[1..].parse::<u32>().unwrap());
    assert_eq!(
        texts,
        (0..18).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "the control got every broadcast once"
    );
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    for (n, hub) in hubs.iter().enumerate() {
        let sent: Vec<_> = all
            .iter()
            .filter(|(_, d)| d[1..].parse::<usize>().unwrap() % 3 == n)
            .map(|(_, d)| d[1..].parse::<usize>().unwrap())
            .collect();
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "node {n}'s in order");
        let published = || hub.stats().backplane.map_or(0, |b| b.published);
        until_published(&format!("node {n}'s 6"), published, 6).await;
        assert_eq!(published(), 6, "node {n}");
        let bp = hub.stats().backplane.unwrap();
        assert_eq!(bp.state, BackplaneState::Up);
        assert_eq!(bp.publish_failed + bp.dropped + bp.local_only, 0);
    }
    assert_eq!(
        seen,
        all[..5],
        "node A gave the cluster's ids, in its order"
    );

    // resume on B (actix) from A's last id: exactly the rest, same ids
    let last = seen[4].0.to_string();
    let mut resumed = SseClient::get(
        b.addr,
        "/events/chat",
        &[ACCEPT, ("last-event-id", last.as_str())],
    )
    .await;
    assert_eq!(events(&mut resumed, 13).await, all[5..]);
    // and a WebSocket client on C (warp) resuming from the 9th id
    let mut ws = connect(&c.url(&format!("/ws/chat?last_event_id={}", all[8].0))).await;
    for (_, data) in &all[9..] {
        assert_eq!(&next_text(&mut ws).await, data);
    }
    // both then get what comes next, once
    wait_hub(&b.app.chat, "the resumed", |h| h.client_count() == 1).await;
    wait_hub(&c.app.chat, "the control and ws", |h| h.client_count() == 2).await;
    a.app.chat.broadcast("after");
    let (_, data) = events(&mut resumed, 1).await.remove(0);
    assert_eq!(data, "after");
    assert_eq!(next_text(&mut ws).await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_late_serves_resumes_from_the_clusters_history() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, _) = node(Adapter::Warp, &redis).await;
    let mut control = SseClient::get(a.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(&a.app.chat, "the control", |h| h.client_count() == 1).await;
    for i in 0..5 {
        a.app.chat.broadcast(format!("m{i}"));
    }
    let all = events(&mut control, 5).await;
    // B starts now: it never saw m0..m4 go by
    let (b, _) = node(Adapter::Hyper, &redis).await;
    let from = all[1].0.to_string();
    let mut late = SseClient::get(
        b.addr,
        "/events/chat",
        &[ACCEPT, ("last-event-id", from.as_str())],
    )
    .await;
    assert_eq!(events(&mut late, 3).await, all[2..]);
    // an id issued a moment ago, not here yet (here: newer than any): the client waits for
    // what follows it, rather than being told it missed something
    let ahead = (all[4].0 + 1).to_string();
    let mut waiting = SseClient::get(
        b.addr,
        "/events/chat",
        &[ACCEPT, ("last-event-id", ahead.as_str())],
    )
    .await;
    wait_hub(&b.app.chat, "both", |h| h.client_count() == 2).await;
    b.app.chat.broadcast("next");
    let (id, data) = events(&mut waiting, 1).await.remove(0);
    assert_eq!(data, "next", "no missed event, no replay");
    assert!(id > all[4].0);
    assert_eq!(events(&mut late, 1).await, vec![(id, "next".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_alone_delivers_what_it_missed_from_the_history_when_back() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, (b, b_backplane), b_conn) = a_and_b(&redis).await;
    let mut ws = connect(&b.url("/ws/chat")).await;
    wait_hub(&b.app.chat, "the client", |h| h.client_count() == 1).await;
    while_b_is_cut_off(&redis, &a, &b_backplane, b_conn, 5).await;
    // B reconnects, reads the history, and its client gets all five once, in order
    for i in 0..5 {
        assert_eq!(next_text(&mut ws).await, format!("m{i}"));
    }
    a.0.app.chat.broadcast("after");
    assert_eq!(next_text(&mut ws).await, "after", "nothing twice");
    let stats = b_backplane.stats();
    assert_eq!(stats.caught_up, 5, "{stats:?}");
    assert_eq!((stats.disconnects, stats.catch_up_gaps), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_longer_than_the_history_is_counted_as_a_gap() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, (b, b_backplane), b_conn) = a_and_b(&redis).await;
    let history = b.app.chat.config().history;
    while_b_is_cut_off(&redis, &a, &b_backplane, b_conn, history + 5).await;
    // B fetches one more than the stream keeps (history + 2), and delivers all it fetched
    let fetched = history as u64 + 2;
    tokio::time::timeout(GUARD, async {
        while b_backplane.stats().caught_up < fetched {
            b_backplane.until(BackplaneState::Up).await;
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("B never caught up");
    let stats = b_backplane.stats();
    assert_eq!(stats.caught_up, fetched, "the newest {fetched}");
    assert_eq!(
        stats.catch_up_gaps, 1,
        "the 3 older ones, lost to B, are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_inside_a_catch_up_gap_gets_a_missed_notice() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    // B's hub keeps more history than the stream A caps (A's history + 2): after a long
    // cut-off B still holds what came before the gap, so only the gap can tell a resume
    // from inside it that messages were lost.
    let (a, (b, b_backplane), b_conn) = a_and_b_with(&redis, |c| c.history(5_000)).await;
    let stream = a.0.app.chat.config().history + 2;
    let mut control = SseClient::get(a.0.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(&a.0.app.chat, "the control", |h| h.client_count() == 1).await;
    a.0.app.chat.broadcast("before");
    let before = events(&mut control, 1).await[0].clone();
    assert_eq!(before.1, "before");
    drop(control);
    let received = || b_backplane.stats().received;
    until_published("B's copy of 'before'", received, 1).await;
    // well past the stream's cap, approximate trimming included
    while_b_is_cut_off(&redis, &a, &b_backplane, b_conn, stream + 300).await;
    // the gap is recorded before it is counted
    let gaps = || b_backplane.stats().catch_up_gaps;
    until_published("B's catch-up gap", gaps, 1).await;
    // m0 was trimmed from the stream before B came back: a client whose last id lies inside
    // the lost range resumes on B, is told it missed some, then gets what B has
    let last = (before.0 + 1).to_string();
    let mut resumed =
        SseClient::get(b.addr, "/events/chat", &[ACCEPT, ("last-event-id", &last)]).await;
    let notice = resumed.next().await;
    assert_eq!(notice.event, "missed", "a silent gap: {notice:?}");
    let first = resumed.next().await;
    let k: usize = first.data.strip_prefix('m').unwrap().parse().unwrap();
    assert!(k >= 1, "m0 was trimmed, yet B has it: {first:?}");
    assert!(first.id.parse::<u64>().unwrap() > before.0 + 1);
    assert_eq!(b_backplane.stats().catch_up_gaps, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_put_in_the_payload_are_the_ids_the_cluster_gave() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, _) = node(Adapter::Hyper, &redis).await;
    let (b, _) = node(Adapter::Actix, &redis).await;
    let mut control = SseClient::get(b.addr, "/events/chat", &[ACCEPT]).await;
    wait_hub(&b.app.chat, "the control", |h| h.client_count() == 1).await;
    // both nodes propose ids at once: some proposals lose and are made again
    const N: usize = 40;
    let (ha, hb) = (a.app.chat.clone(), b.app.chat.clone());
    let send = |hub: hub_core::Hub, node: &'static str| {
        std::thread::spawn(move || {
            for i in 0..N {
                hub.broadcast_with(move |id| {
                    hub_core::Message::text(format!("{node} {i} {}", id.unwrap_or(0)))
                });
            }
        })
    };
    let (ta, tb) = (send(ha, "a"), send(hb, "b"));
    ta.join().unwrap();
    tb.join().unwrap();
    let got = events(&mut control, 2 * N).await;
    let mut next = [0usize; 2];
    for (id, data) in &got {
        let parts: Vec<&str> = data.split(' ').collect();
        assert_eq!(
            parts[2],
            id.to_string(),
            "the payload's id is the event's: {data}"
        );
        let n = usize::from(parts[0] == "b");
        assert_eq!(parts[1], next[n].to_string(), "in order per node");
        next[n] += 1;
    }
    assert_eq!(next, [N, N]);

    // a proposal that must lose: the history already holds a later id (5 s ahead)
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        + 5_000_000;
    let mut admin = Admin::connect(&redis).await;
    let reply = admin
        .cmd(&format!("XADD hub:chat:history {ahead}-0 e x"))
        .await;
    assert_eq!(reply, format!("${}", format!("{ahead}-0").len()));
    assert_eq!(admin.line().await, format!("{ahead}-0"));
    a.app
        .chat
        .broadcast_with(|id| hub_core::Message::text(format!("{}", id.unwrap_or(0))));
    let (id, data) = events(&mut control, 1).await.remove(0);
    assert_eq!(
        data,
        id.to_string(),
        "proposed again with the id it finally got"
    );
    assert_eq!(u128::from(id), ahead + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_times_out_is_delivered_here_once_and_the_node_recovers() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, a_backplane) = node(Adapter::Hyper, &redis).await;
    let (b, b_backplane) = node(Adapter::Actix, &redis).await;
    let mut ws = connect(&a.url("/ws/chat")).await;
    let mut on_b = connect(&b.url("/ws/chat")).await;
    wait_hub(&a.app.chat, "the client", |h| h.client_count() == 1).await;
    wait_hub(&b.app.chat, "the client", |h| h.client_count() == 1).await;
    // the script is loaded: a publish held up now does run when Redis lets it
    a.app.chat.broadcast("warm");
    assert_eq!(next_text(&mut ws).await, "warm");
    assert_eq!(next_text(&mut on_b).await, "warm");
    // Redis holds every write for 2 s: the publish script's reply does not come within the
    // backplane's 1 s, so the node delivers the broadcast to its own clients itself and
    // leaves Up (Redis is not answering in time).
    let mut admin = Admin::connect(&redis).await;
    assert_eq!(admin.cmd("CLIENT PAUSE 2000 WRITE").await, "+OK");
    a.app.chat.broadcast("once");
    assert_eq!(next_text(&mut ws).await, "once");
    tokio::time::timeout(GUARD, a_backplane.until(BackplaneState::Down))
        .await
        .expect("a publish that timed out left the node Up");
    assert_eq!(a_backplane.stats().publish_failed, 1);
    // When the pause ends Redis runs the held script after all: B gets "once" late, A
    // records it in its history but does not deliver it a second time.
    assert_eq!(next_text(&mut on_b).await, "once");
    tokio::time::timeout(GUARD, a_backplane.until(BackplaneState::Up))
        .await
        .expect("A never came back");
    b.app.chat.broadcast("from b");
    assert_eq!(next_text(&mut ws).await, "from b", "not \"once\" again");
    a.app
        .chat
        .broadcast_with(|id| hub_core::Message::text(format!("after {id:?}")));
    let after = next_text(&mut ws).await;
    assert!(after.starts_with("after Some("), "{after:?}");
    assert_eq!(next_text(&mut on_b).await, "from b");
    assert_eq!(next_text(&mut on_b).await, after);
    assert_eq!(admin.cmd("XLEN hub:chat:history").await, ":4");
    assert_eq!(b_backplane.stats().received, 3, "warm, once, after");
}
