//! Topics across the cluster, against a real `redis-server` the test starts on a free port:
//! a client of each of 100 topics resumes on another node without a gap or a duplicate; a
//! node subscribes to a topic's channel only while it has subscribers for the topic (its
//! `received` counter does not move otherwise); a quick join, leave and join ends subscribed;
//! a topic's keys share one hash slot and its stream is capped and expires. Without
//! redis-server on PATH the tests skip loudly, except under `CI=true`.
#![allow(clippy::unwrap_used, missing_docs)]

use hub_core::{Hub, Message};
use hub_redis::{BackplaneState, RedisBackplane, RedisConfig};
use hub_tests::bare::{serve_hub, NEWS};
use hub_tests::redis::{join, node, numsub, until_numsub, until_published, RedisServer};
use hub_tests::sse::{events, SseClient, ACCEPT};
use hub_tests::{next_text, wait_hub, Adapter, Ws, GUARD};
use std::sync::Arc;
use std::time::Duration;

/// A topic message as these tests publish it: `<topic> <round> <id>`.
fn publish(hub: &Hub, k: usize, round: usize) {
    hub.publish_with(&format!("t{k}"), move |id| {
        Message::text(format!("t{k} {round} {}", id.unwrap_or(0)))
    });
}

/// `(round, id)` of a message of topic `k`.
async fn next(ws: &mut Ws, k: usize) -> (usize, u64) {
    let text = next_text(ws).await;
    let parts: Vec<&str> = text.split(' ').collect();
    assert_eq!(parts.len(), 3, "{text:?}");
    assert_eq!(
        parts[0],
        format!("t{k}"),
        "another topic's message: {text:?}"
    );
    let id: u64 = parts[2].parse().unwrap();
    assert!(id > 0, "published without a cluster id: {text:?}");
    (parts[1].parse().unwrap(), id)
}

/// Reads topic `k`'s messages up to round `last`.
async fn until_round(ws: &mut Ws, k: usize, last: usize) -> Vec<(usize, u64)> {
    let mut got = Vec::new();
    loop {
        let m = next(ws, k).await;
        got.push(m);
        if m.0 == last {
            return got;
        }
    }
}

const TOPICS: usize = 100;
const ROUNDS: usize = 20;

/// Checks what a client of topic `k` got: every round once, ids increasing (the order the
/// cluster gave), each publishing node's rounds in the order it published them.
fn check(k: usize, got: &[(usize, u64)]) {
    let mut rounds: Vec<usize> = got.iter().map(|m| m.0).collect();
    rounds.sort_unstable();
    assert_eq!(rounds, (0..=ROUNDS).collect::<Vec<_>>(), "t{k}: {got:?}");
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "t{k}: {got:?}");
    for node in 0..3 {
        let mine: Vec<usize> = got
            .iter()
            .map(|m| m.0)
            .filter(|r| (k + r) % 3 == node)
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "t{k}: {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_topics_resume_on_other_nodes_without_gap_or_duplicate() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let mut nodes = Vec::new();
    for adapter in [Adapter::Hyper, Adapter::Actix, Adapter::Warp] {
        nodes.push(node(adapter, &redis).await);
    }
    let hubs: Vec<Hub> = nodes.iter().map(|(s, _)| s.app.chat.clone()).collect();
    // topic k's client on node k % 3; for even k a control, on the node the client will
    // resume on, that stays all along (odd k: nobody there has the topic when it resumes)
    let mut clients = Vec::new();
    let mut controls = Vec::new();
    for k in 0..TOPICS {
        let (ws, client) = join(&nodes[k % 3].0).await;
        client.subscribe(&format!("t{k}")).unwrap();
        clients.push(ws);
        if k % 2 == 0 {
            let (ws, client) = join(&nodes[(k + 1) % 3].0).await;
            client.subscribe(&format!("t{k}")).unwrap();
            controls.push((k, ws));
        }
    }
    // every round of every topic from another node than the last
    let rounds = |hubs: &[Hub], from: usize, to: usize| {
        for round in from..to {
            for k in 0..TOPICS {
                publish(&hubs[(k + round) % 3], k, round);
            }
        }
    };
    rounds(&hubs, 0, ROUNDS / 2);
    // each client gets 5 messages and goes, the rest unread
    let mut seen = Vec::new();
    for (k, ws) in clients.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(next(ws, k).await);
        }
        seen.push(got);
    }
    drop(clients);
    for (n, hub) in hubs.iter().enumerate() {
        wait_hub(hub, "the clients to leave", |h| {
            (0..TOPICS)
                .filter(|k| k % 3 == n)
                .all(|k| h.subscriber_count(&format!("t{k}")) == 0)
        })
        .await;
    }
    // half resume on the next node; the rest while the second half of the rounds goes out
    let mut resumed = Vec::new();
    let mut second_half = None;
    for k in 0..TOPICS {
        if k == TOPICS / 2 {
            let hubs = hubs.clone();
            second_half = Some(std::thread::spawn(move || {
                rounds(&hubs, ROUNDS / 2, ROUNDS);
            }));
        }
        let (ws, client) = join(&nodes[(k + 1) % 3].0).await;
        let last = seen[k].last().unwrap().1;
        client.subscribe_from(&format!("t{k}"), last).unwrap();
        resumed.push(ws);
    }
    second_half.unwrap().join().unwrap();
    // every round in Redis (a publish returns when it is handed to the node's publisher)
    // before the last, so that the last comes last
    for (n, (_, backplane)) in nodes.iter().enumerate() {
        let mine = (0..ROUNDS)
            .flat_map(|r| (0..TOPICS).map(move |k| (k + r) % 3))
            .filter(|node| *node == n)
            .count();
        let published = || backplane.stats().published;
        until_published(&format!("node {n}'s rounds"), published, mine as u64).await;
    }
    for k in 0..TOPICS {
        publish(&hubs[k % 3], k, ROUNDS); // the last round: the end of each topic
    }
    let mut all = Vec::new();
    for (k, ws) in resumed.iter_mut().enumerate() {
        let mut got = seen[k].clone();
        got.extend(until_round(ws, k, ROUNDS).await);
        check(k, &got);
        all.push(got);
    }
    for (k, ws) in &mut controls {
        let got = until_round(ws, *k, ROUNDS).await;
        check(*k, &got);
        let sorted = |g: &[(usize, u64)]| {
            let mut g = g.to_vec();
            g.sort_unstable();
            g
        };
        assert_eq!(
            sorted(&got),
            sorted(&all[*k]),
            "t{k}: the same ids everywhere"
        );
    }
    for (server, backplane) in &nodes {
        let stats = backplane.stats();
        assert_eq!(stats.state, BackplaneState::Up, "{:?}", server.adapter);
        assert_eq!(
            stats.publish_failed + stats.dropped + stats.local_only + stats.malformed,
            0,
            "{:?}: {stats:?}",
            server.adapter
        );
    }
}

/// The next text of `ws`, after any of `before` (in their order, once each): a topic's fresh
/// subscriber may also get what was published up to one probe interval before it joined.
async fn after(ws: &mut Ws, before: &[String], expect: &str) {
    let mut earlier = before.iter();
    loop {
        let text = next_text(ws).await;
        if text == expect {
            return;
        }
        assert!(
            earlier.any(|e| *e == text),
            "{text:?}: not one of the earlier messages, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_receives_a_topics_traffic_only_while_it_has_subscribers_for_it() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let config = RedisConfig::new("chat");
    let (a, _) = node(Adapter::Hyper, &redis).await;
    let (b, b_backplane) = node(Adapter::Warp, &redis).await;
    // A has a subscriber of T; B one of U only
    let (mut on_a, ca) = join(&a).await;
    ca.subscribe("T").unwrap();
    let (mut on_b, cb) = join(&b).await;
    cb.subscribe("U").unwrap();
    until_numsub(&redis, &config.topic_channel("T"), 1).await;
    until_numsub(&redis, &config.topic_channel("U"), 1).await;
    let earlier: Vec<String> = (0..20).map(|i| format!("T{i}")).collect();
    for text in &earlier {
        a.app.chat.publish("T", text.clone());
    }
    a.app.chat.publish("U", "U0");
    for text in &earlier {
        assert_eq!(&next_text(&mut on_a).await, text);
    }
    // B gets the channels' messages in the order Redis ran the publishes: subscribed to T,
    // it would have had T's 20 before U0
    assert_eq!(next_text(&mut on_b).await, "U0");
    assert_eq!(b_backplane.stats().received, 1, "U0 only");
    // a subscriber of T joins on B: it gets what is published after it joined
    cb.subscribe("T").unwrap();
    a.app.chat.publish("T", "after");
    after(&mut on_b, &earlier, "after").await;
    assert_eq!(next_text(&mut on_a).await, "after");
    until_numsub(&redis, &config.topic_channel("T"), 2).await;
    // B's last subscriber of T leaves: B unsubscribes, and T's traffic stops reaching it
    assert!(cb.unsubscribe("T"));
    until_numsub(&redis, &config.topic_channel("T"), 1).await;
    let received = b_backplane.stats().received;
    for text in &earlier {
        a.app.chat.publish("T", text.clone());
    }
    a.app.chat.publish("U", "U1");
    assert_eq!(next_text(&mut on_b).await, "U1", "nothing of T");
    assert_eq!(b_backplane.stats().received, received + 1, "U1 only");
    assert_eq!(numsub(&redis, &config.topic_channel("T")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_join_leave_join_ends_subscribed_and_the_last_leave_stops_traffic() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let config = RedisConfig::new("chat");
    let (a, _) = node(Adapter::Hyper, &redis).await;
    let (b, b_backplane) = node(Adapter::Actix, &redis).await;
    let (mut sentinel, cs) = join(&b).await;
    cs.subscribe("U").unwrap();
    let (mut on_b, cb) = join(&b).await;
    // faster than B's task acts on them: it sees a join, and ends subscribed
    cb.subscribe("T").unwrap();
    assert!(cb.unsubscribe("T"));
    cb.subscribe("T").unwrap();
    a.app.chat.publish("T", "x");
    assert_eq!(next_text(&mut on_b).await, "x");
    until_numsub(&redis, &config.topic_channel("T"), 1).await;
    // and the same with a client that leaves the hub in between
    let (leaver, cl) = join(&b).await;
    cl.subscribe("V").unwrap();
    drop(leaver);
    wait_hub(&b.app.chat, "the leaver to go", |h| {
        h.subscriber_count("V") == 0
    })
    .await;
    cb.subscribe("V").unwrap();
    a.app.chat.publish("V", "y");
    assert_eq!(next_text(&mut on_b).await, "y");
    // the last subscriber of T leaves: no more of its traffic
    assert!(cb.unsubscribe("T"));
    until_numsub(&redis, &config.topic_channel("T"), 0).await;
    let received = b_backplane.stats().received;
    a.app.chat.publish("T", "not for b");
    a.app.chat.publish("U", "z");
    assert_eq!(next_text(&mut sentinel).await, "z");
    assert_eq!(b_backplane.stats().received, received + 1, "z only");
    a.app.chat.publish("V", "v");
    assert_eq!(
        next_text(&mut on_b).await,
        "v",
        "T's message never came {:?}",
        b_backplane.stats()
    );
}

/// Redis Cluster's hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of the whole key.
fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|b| *b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for byte in tagged.unwrap_or(bytes) {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topics_keys_share_a_hash_slot_and_its_stream_is_capped_and_expires() {
    // the CRC of Redis Cluster's specification, and its hash-tag examples
    assert_eq!(slot("123456789"), 0x31C3);
    assert_eq!(slot("{user1000}.following"), slot("user1000"));
    assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    let config = RedisConfig::new("chat");
    for topic in ["room:1", "a{b}", "{", "}x{", "100%", "%7B", "é", "}"] {
        let (channel, stream) = (config.topic_channel(topic), config.topic_stream(topic));
        assert_eq!(
            slot(&channel),
            slot(&stream),
            "{topic:?}: {channel} {stream}"
        );
        let tag = &channel[channel.find('{').unwrap() + 1..channel.rfind('}').unwrap()];
        assert!(!tag.contains(['{', '}']), "{channel}");
        assert_eq!(slot(&channel), slot(tag));
    }
    assert_ne!(config.topic_channel("{"), config.topic_channel("%7B"));
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    // braces in the name or the prefix would become every topic's hash tag
    let hub = Hub::new();
    for bad in [
        RedisConfig::new("a{b}"),
        RedisConfig::new("chat").prefix("x}"),
    ] {
        let error = hub_redis::attach(&hub, &redis.url(), bad).unwrap_err();
        assert!(error.to_string().contains("brace"), "{error}");
    }
    // published with no subscriber anywhere: still kept, capped, for the others to resume
    let (a, a_backplane) = node(Adapter::Hyper, &redis).await;
    let cap = a.app.chat.config().history + 2;
    let n = cap + 300;
    for i in 0..n {
        a.app.chat.publish("capped", format!("{i}"));
    }
    let published = || a_backplane.stats().published;
    until_published("the topic's messages", published, n as u64).await;
    let stream = config.topic_stream("capped");
    let len: usize = redis.cli(&["XLEN", &stream]).trim().parse().unwrap();
    assert!((cap..n).contains(&len), "{len} kept of {n}, cap {cap}");
    let ttl: u64 = redis.cli(&["PTTL", &stream]).trim().parse().unwrap();
    assert!(
        (1..=3_600_000).contains(&ttl),
        "expires within the hour: {ttl}"
    );
    // with a short time to live, 50 topics' streams are gone soon after their last publish
    let short = Hub::new();
    let config = RedisConfig::new("brief").topic_ttl(Duration::from_millis(300));
    let backplane = hub_redis::attach(&short, &redis.url(), config.clone()).unwrap();
    until(&backplane, BackplaneState::Up).await;
    for k in 0..50 {
        short.publish(&format!("t{k}"), "once");
    }
    until_published("50 topics", || backplane.stats().published, 50).await;
    let keys = || {
        let out = redis.cli(&["KEYS", "hub:brief:*"]);
        out.lines().filter(|l| !l.is_empty()).count()
    };
    assert_eq!(keys(), 50, "one stream per topic");
    tokio::time::timeout(GUARD, async {
        // Redis expires keys on its own clock: ask every 50 ms
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        while keys() > 0 {
            tick.tick().await;
        }
    })
    .await
    .expect("the idle topics' streams never expired");
}

async fn until(backplane: &Arc<RedisBackplane>, state: BackplaneState) {
    tokio::time::timeout(GUARD, backplane.until(state))
        .await
        .unwrap_or_else(|_| panic!("never {state:?}: {:?}", backplane.stats()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_of_a_topic_resumes_on_another_node_with_last_event_id() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    // two bare hubs (an SSE stream created in the topic NEWS) joined through Redis
    let mut nodes = Vec::new();
    for adapter in [Adapter::Hyper, Adapter::Warp] {
        let hub = Hub::with_config(hub_core::HubConfig::default().history(100)).unwrap();
        let backplane = hub_redis::attach(&hub, &redis.url(), RedisConfig::new("bare")).unwrap();
        until(&backplane, BackplaneState::Up).await;
        let addr = serve_hub(adapter, &hub).await;
        nodes.push((hub, addr));
    }
    let ((a, a_addr), (b, b_addr)) = (&nodes[0], &nodes[1]);
    let subscribers = |hub: &Hub, n: usize| {
        let hub = hub.clone();
        async move { wait_hub(&hub, "the streams", |h| h.subscriber_count(NEWS) == n).await }
    };
    let mut first = SseClient::get(*a_addr, "/sse-news", &[ACCEPT]).await;
    let mut control = SseClient::get(*b_addr, "/sse-news", &[ACCEPT]).await;
    subscribers(a, 1).await;
    subscribers(b, 1).await;
    for i in 0..10 {
        nodes[i % 2].0.publish(NEWS, format!("n{i}"));
    }
    let seen = events(&mut first, 4).await;
    drop(first); // gone after 4, the rest unread
    subscribers(a, 0).await;
    for i in 10..16 {
        nodes[i % 2].0.publish(NEWS, format!("n{i}"));
    }
    let all = events(&mut control, 16).await;
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert_eq!(
        seen,
        all[..4],
        "the cluster's ids, in its order, on both nodes"
    );
    // on B, where the topic is live: from A's 4th id, exactly the rest
    let last = seen[3].0.to_string();
    let headers = [ACCEPT, ("last-event-id", last.as_str())];
    let mut on_b = SseClient::get(*b_addr, "/sse-news", &headers).await;
    assert_eq!(events(&mut on_b, 12).await, all[4..]);
    // on A, which has no subscriber of the topic any more: read back from the cluster
    let last = all[1].0.to_string();
    let headers = [ACCEPT, ("last-event-id", last.as_str())];
    let mut on_a = SseClient::get(*a_addr, "/sse-news", &headers).await;
    assert_eq!(events(&mut on_a, 14).await, all[2..]);
    // then live, once, on both
    subscribers(a, 1).await;
    b.publish(NEWS, "after");
    for stream in [&mut on_a, &mut on_b, &mut control] {
        assert_eq!(events(stream, 1).await[0].1, "after");
    }
}
