//! Two hubs in one registry, real clients on a hub-hyper server, a scrape over HTTP parsed by
//! Python's prometheus_client: every sample equals `hub.stats()`.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{close_code, connect, get, next_data, parse, scrape, send, serve, until, Parsed};
use hub_core::{DisconnectReason, Hub, HubConfig, Rejection, Stats};
use hub_metrics::{AddError, HubMetrics};
use prometheus_client::registry::Registry;
use tokio_tungstenite::tungstenite::Message;

/// A sample: its name, its label besides `hub` (if any), its value.
type Sample = (String, Option<(&'static str, String)>, u64);

/// Every sample a hub without a backplane must have, written out independently of the
/// crate's table.
fn expected(hub: &Hub, stats: &Stats) -> Vec<Sample> {
    let (histories, kept) = hub.topic_history_size();
    let subscriptions: usize = hub.clients().iter().map(|c| c.topics().len()).sum();
    let mut out: Vec<Sample> = [
        ("hub_connected_clients", stats.connected as u64),
        ("hub_connections_total", stats.connections_total),
        ("hub_evictions_total", stats.evicted()),
        ("hub_messages_received_total", stats.messages_in),
        ("hub_received_bytes_total", stats.bytes_in),
        ("hub_messages_sent_total", stats.messages_out),
        ("hub_sent_bytes_total", stats.bytes_out),
        ("hub_dropped_messages_total", stats.dropped),
        ("hub_broadcasts_total", stats.broadcasts),
        ("hub_rate_limited_messages_total", stats.rate_limited),
        ("hub_hook_panics_total", stats.hook_panics),
        ("hub_topics", hub.topic_count() as u64),
        ("hub_topic_subscriptions", subscriptions as u64),
        ("hub_topic_histories", histories as u64),
        ("hub_topic_history_messages", kept as u64),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), None, value))
    .collect();
    for reason in DisconnectReason::ALL {
        out.push((
            "hub_disconnects_total".into(),
            Some(("reason", reason.as_str().into())),
            stats.disconnected(*reason),
        ));
    }
    for rejection in Rejection::ALL {
        out.push((
            "hub_rejected_upgrades_total".into(),
            Some(("reason", rejection.as_str().into())),
            stats.rejected(*rejection),
        ));
    }
    out
}

/// Asserts that the scrape has exactly the expected samples for `name`.
fn assert_matches(parsed: &Parsed, name: &str, hub: &Hub, stats: &Stats) {
    let expected = expected(hub, stats);
    for (sample, label, value) in &expected {
        let mut labels = vec![("hub", name)];
        if let Some((k, v)) = label {
            labels.push((k, v.as_str()));
        }
        assert_eq!(
            parsed.value(sample, &labels),
            Some(*value as f64),
            "{sample}{labels:?} of hub {name}"
        );
    }
    assert_eq!(
        parsed.of_hub(name),
        expected.len(),
        "extra samples for {name}"
    );
}

fn two_hubs() -> (Hub, Hub) {
    let chat = Hub::new();
    chat.on_message(|hub, msg| {
        hub.broadcast(msg.message);
    });
    let config = HubConfig::default()
        .max_message_size(64)
        .history(8)
        .topic_history(8);
    let news = Hub::with_config(config).unwrap();
    news.on_message(|hub, msg| {
        if let Some(topic) = msg.message.payload().strip_prefix(b"join:") {
            let topic = std::str::from_utf8(topic).unwrap();
            msg.client.subscribe(topic).unwrap();
            hub.publish(topic, "welcome");
        } else {
            let _ = msg.client.send(msg.message);
        }
    });
    (chat, news)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_share_a_registry_and_match_their_stats() {
    let (chat, news) = two_hubs();
    let mut registry = Registry::default();
    let metrics = HubMetrics::register(&mut registry);
    metrics.add("chat", &chat).unwrap();
    metrics.add("news", &news).unwrap();
    let addr = serve(
        vec![("chat", chat.clone()), ("news", news.clone())],
        registry,
    )
    .await;

    // chat: three clients, a text and a binary broadcast, one peer close, one server close,
    // one refused upgrade
    let mut a = connect(addr, "chat").await;
    let mut b = connect(addr, "chat").await;
    let mut c = connect(addr, "chat").await;
    until("three chat clients", &chat, |h| h.client_count() == 3).await;
    send(&mut a, Message::text("hello")).await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(next_data(ws).await, Message::text("hello"));
    }
    send(&mut b, Message::binary(vec![1u8, 2, 3])).await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(next_data(ws).await, Message::binary(vec![1u8, 2, 3]));
    }
    c.close(None).await.unwrap();
    until("c's departure", &chat, |h| {
        h.stats().disconnected(DisconnectReason::PeerClosed) == 1
    })
    .await;
    let (status, _, _) = get(addr, "/ws/chat").await;
    assert!(status.starts_with("HTTP/1.1 426"), "{status}");
    for client in chat.clients() {
        client.close(1000, "bye");
    }
    assert_eq!(close_code(&mut a).await, 1000);
    assert_eq!(close_code(&mut b).await, 1000);
    until("the server's closes", &chat, |h| {
        h.stats().disconnected(DisconnectReason::ClosedByServer) == 2
    })
    .await;

    // news: a topic subscriber with a history, and a client closed for a message too big
    let mut d = connect(addr, "news").await;
    send(&mut d, Message::text("join:room")).await;
    assert_eq!(next_data(&mut d).await, Message::text("welcome"));
    let mut e = connect(addr, "news").await;
    send(&mut e, Message::text("x".repeat(100))).await;
    assert_eq!(close_code(&mut e).await, 1009);
    until("e's departure", &news, |h| {
        h.stats().disconnected(DisconnectReason::TooBig) == 1 && h.client_count() == 1
    })
    .await;

    let chat_before = chat.stats();
    let news_before = news.stats();
    let parsed = scrape(addr).await;
    // nothing moved during the scrape, so the scrape must equal the stats exactly
    assert_eq!(chat.stats(), chat_before);
    assert_eq!(news.stats(), news_before);

    // the activity above, in the stats
    assert_eq!(chat_before.connections_total, 3);
    assert_eq!(chat_before.connected, 0);
    assert_eq!(chat_before.messages_in, 2);
    assert_eq!(chat_before.bytes_in, 8);
    assert_eq!(chat_before.messages_out, 6);
    assert_eq!(chat_before.bytes_out, 24);
    assert_eq!(chat_before.broadcasts, 2);
    assert_eq!(chat_before.rejected_upgrades, 1);
    assert_eq!(news_before.connected, 1);
    assert_eq!(news.topic_count(), 1);
    assert_eq!(news.topic_history_size(), (1, 1));

    assert_matches(&parsed, "chat", &chat, &chat_before);
    assert_matches(&parsed, "news", &news, &news_before);
    assert_eq!(
        parsed.value("hub_topic_subscriptions", &[("hub", "news")]),
        Some(1.0)
    );
    assert_eq!(
        parsed.value(
            "hub_disconnects_total",
            &[("hub", "chat"), ("reason", "closed_by_server")]
        ),
        Some(2.0)
    );
    // types as declared; no backplane, so no backplane family
    for (family, kind) in [
        ("hub_connected_clients", "gauge"),
        ("hub_connections", "counter"),
        ("hub_disconnects", "counter"),
        ("hub_received_bytes", "counter"),
        ("hub_topics", "gauge"),
    ] {
        assert_eq!(
            parsed.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert!(!parsed.types.keys().any(|f| f.starts_with("hub_backplane")));
    drop(d);
}

#[tokio::test]
async fn a_dropped_hub_leaves_the_scrape_and_names_are_unique() {
    let kept = Hub::new();
    let gone = Hub::new();
    let mut registry = Registry::default();
    let metrics = HubMetrics::register(&mut registry);
    metrics.add("kept", &kept).unwrap();
    metrics.add("gone", &gone).unwrap();
    assert_eq!(
        metrics.add("kept", &gone),
        Err(AddError::Duplicate("kept".into()))
    );
    assert_eq!(metrics.add("", &gone), Err(AddError::EmptyName));

    let parsed = parse(&hub_metrics::encode(&registry).unwrap()).await;
    assert!(parsed.of_hub("gone") > 0);
    drop(gone);
    let parsed = parse(&hub_metrics::encode(&registry).unwrap()).await;
    assert_eq!(parsed.of_hub("gone"), 0, "a dropped hub is not scraped");
    assert!(parsed.of_hub("kept") > 0);
    assert_eq!(metrics.names(), ["kept"]);
    // the name of a dropped hub is free again
    let again = Hub::new();
    metrics.add("gone", &again).unwrap();
    assert!(metrics.remove("gone"));
    assert!(!metrics.remove("gone"));

    // no hub: a valid, empty exposition
    let empty = Registry::default();
    let parsed = parse(&hub_metrics::encode(&empty).unwrap()).await;
    assert!(parsed.samples.is_empty());
}
