//! Per-topic history: one id sequence per hub, resume of one or several topics without a gap
//! or a duplicate, `missed` when too old, idle expiry and the total bound.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{poll_once, RecordingTransport, StdTimer};
use hub_core::{ConnectOptions, Connection, Hub, HubConfig, Message, Missed, Outgoing, Subscribed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Conn = Connection<RecordingTransport, StdTimer>;

fn connect(hub: &Hub, options: ConnectOptions) -> (Conn, Arc<Mutex<Vec<Outgoing>>>) {
    let written = Arc::new(Mutex::new(Vec::new()));
    (
        hub.connect(RecordingTransport(written.clone()), StdTimer, options),
        written,
    )
}

/// Polls the connection, then returns the missed notice and `(id, text)` written so far.
fn drain(conn: &mut Conn, written: &Mutex<Vec<Outgoing>>) -> (Option<Missed>, Vec<(u64, String)>) {
    let _ = poll_once(conn);
    let written = written.lock().unwrap();
    let missed = written.iter().find_map(|o| match o {
        Outgoing::Missed(m) => Some(*m),
        _ => None,
    });
    let messages = written
        .iter()
        .filter_map(|o| match o {
            Outgoing::Message { message, id, .. } => {
                Some((id.unwrap(), message.as_text().unwrap().to_owned()))
            }
            _ => None,
        })
        .collect();
    (missed, messages)
}

fn texts(messages: &[(u64, String)]) -> Vec<&str> {
    messages.iter().map(|(_, t)| t.as_str()).collect()
}

/// Publishes with the id in the payload and returns the id.
fn publish(hub: &Hub, topic: &str, text: &str) -> u64 {
    let id = Arc::new(Mutex::new(0));
    let (seen, text) = (id.clone(), text.to_owned());
    hub.publish_with(topic, move |id| {
        *seen.lock().unwrap() = id.unwrap();
        Message::text(text.clone())
    });
    let id = *id.lock().unwrap();
    id
}

#[test]
fn broadcasts_and_topics_share_one_id_sequence() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    let opts = ConnectOptions::websocket().topics(["a", "b"]).unwrap();
    let (mut conn, written) = connect(&hub, opts);
    assert_eq!(publish(&hub, "a", "a1"), 1);
    hub.broadcast("all2");
    assert_eq!(publish(&hub, "b", "b3"), 3);
    assert_eq!(publish(&hub, "nobody", "n4"), 4);
    assert_eq!(publish(&hub, "a", "a5"), 5);
    let (missed, got) = drain(&mut conn, &written);
    assert!(missed.is_none());
    assert_eq!(
        got,
        [(1, "a1"), (2, "all2"), (3, "b3"), (5, "a5")].map(|(i, t)| (i, t.to_owned()))
    );
}

#[test]
fn one_topic_resumes_exactly_then_live_without_gap_or_duplicate() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    for i in 1..=6 {
        publish(&hub, "a", &format!("a{i}")); // ids 1..=6
        publish(&hub, "b", &format!("b{i}")); // interleaved: ids 7.. are not a's
    }
    // a's ids are the odd ones 1..=11; the client saw a3 (id 5)
    let opts = ConnectOptions::sse(None)
        .topics(["a"])
        .unwrap()
        .last_event_id(Some(5));
    let (mut conn, written) = connect(&hub, opts);
    publish(&hub, "a", "live");
    publish(&hub, "b", "not mine");
    let (missed, got) = drain(&mut conn, &written);
    assert!(missed.is_none());
    assert_eq!(texts(&got), ["a4", "a5", "a6", "live"]);
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [7, 9, 11, 13]);
}

#[test]
fn several_topics_per_stream_resume_each_without_a_gap() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    publish(&hub, "a", "a1"); // 1
    publish(&hub, "b", "b1"); // 2
    hub.broadcast("all"); // 3
    publish(&hub, "c", "c1"); // 4: not subscribed
    publish(&hub, "b", "b2"); // 5
    publish(&hub, "a", "a2"); // 6
    let opts = ConnectOptions::sse(None)
        .topics(["a", "b"])
        .unwrap()
        .last_event_id(Some(1));
    let (mut conn, written) = connect(&hub, opts);
    publish(&hub, "b", "b3");
    let (missed, got) = drain(&mut conn, &written);
    assert!(missed.is_none());
    assert_eq!(texts(&got), ["b1", "all", "b2", "a2", "b3"]);
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "merged by id: {ids:?}");
}

#[test]
fn a_resume_older_than_the_topic_history_gets_missed() {
    let hub = Hub::with_config(HubConfig::default().history(10).topic_history(2)).unwrap();
    for i in 1..=5 {
        publish(&hub, "a", &format!("a{i}"));
    }
    let opts = ConnectOptions::sse(None)
        .topics(["a"])
        .unwrap()
        .last_event_id(Some(1));
    let (mut conn, written) = connect(&hub, opts);
    let (missed, got) = drain(&mut conn, &written);
    assert_eq!(
        missed,
        Some(Missed {
            last_event_id: 1,
            first_available: Some(4)
        })
    );
    assert_eq!(texts(&got), ["a4", "a5"]);
    // right before the oldest kept: nothing lost
    let opts = ConnectOptions::sse(None)
        .topics(["a"])
        .unwrap()
        .last_event_id(Some(3));
    let (mut conn, written) = connect(&hub, opts);
    let (missed, got) = drain(&mut conn, &written);
    assert!(missed.is_none());
    assert_eq!(texts(&got), ["a4", "a5"]);
}

#[test]
fn a_websocket_joining_later_resumes_the_topic() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    let (mut conn, written) = connect(&hub, ConnectOptions::websocket());
    publish(&hub, "room", "r1"); // 1
    publish(&hub, "room", "r2"); // 2
    let resumed = conn.client().subscribe_from("room", 1).unwrap();
    assert_eq!(resumed.subscribed, Subscribed::Joined);
    assert_eq!((resumed.replayed, resumed.missed), (1, None));
    publish(&hub, "room", "r3");
    let again = conn.client().subscribe_from("room", 0).unwrap();
    assert_eq!((again.subscribed, again.replayed), (Subscribed::Already, 0));
    let (_, got) = drain(&mut conn, &written);
    assert_eq!(texts(&got), ["r2", "r3"]);
    // never issued here: told so
    let (other, _) = connect(&hub, ConnectOptions::websocket());
    let future = other.client().subscribe_from("room", 99).unwrap();
    assert_eq!(future.missed.map(|m| m.last_event_id), Some(99));
}

#[test]
fn an_idle_topic_history_is_dropped_lazily_and_a_busy_one_kept() {
    let hub =
        Hub::with_config(HubConfig::default().history(10).topic_idle(Duration::ZERO)).unwrap();
    let (listener, _) = connect(&hub, ConnectOptions::websocket().topics(["kept"]).unwrap());
    publish(&hub, "idle", "i1"); // 1: nobody subscribed, idle from now
    publish(&hub, "kept", "k1"); // 2: this later operation drops idle's history
    assert_eq!(hub.topic_history_size(), (1, 1));
    let opts = ConnectOptions::sse(None)
        .topics(["idle"])
        .unwrap()
        .last_event_id(Some(0));
    let (mut conn, written) = connect(&hub, opts);
    let (missed, got) = drain(&mut conn, &written);
    assert_eq!(missed.map(|m| m.last_event_id), Some(0), "dropped: told so");
    assert!(got.is_empty());
    // the last subscriber leaving starts the idle time
    drop(listener);
    publish(&hub, "other", "o1");
    assert_eq!(hub.topic_history_size(), (1, 1), "only other's is left");

    let patient = Hub::with_config(HubConfig::default().history(10)).unwrap();
    assert_eq!(patient.config().topic_idle, Duration::from_secs(300));
    publish(&patient, "idle", "i1");
    publish(&patient, "other", "o1");
    assert_eq!(patient.topic_history_size(), (2, 2), "5 minutes not over");
}

#[test]
fn the_total_kept_is_bounded_dropping_the_least_recently_published_first() {
    let hub = Hub::with_config(HubConfig::default().history(10).topic_history_total(3)).unwrap();
    assert_eq!(HubConfig::default().topic_history_total, 100_000);
    publish(&hub, "a", "a1"); // 1
    publish(&hub, "b", "b1"); // 2
    publish(&hub, "a", "a2"); // 3: b is now the least recently published
    publish(&hub, "c", "c1"); // 4: over the bound, b goes
    assert_eq!(hub.topic_history_size(), (2, 3));
    for _ in 0..1_000 {
        publish(&hub, "flood", "f");
    }
    let (topics, messages) = hub.topic_history_size();
    assert!(
        messages <= 3 && topics == 1,
        "{topics} topics, {messages} messages"
    );
    let opts = ConnectOptions::sse(None)
        .topics(["b"])
        .unwrap()
        .last_event_id(Some(0));
    let (mut conn, written) = connect(&hub, opts);
    assert!(
        drain(&mut conn, &written).0.is_some(),
        "b's history was dropped"
    );
    assert_eq!(
        HubConfig::default().topic_history_total(0).validate(),
        Err(hub_core::ConfigError::Zero("topic_history_total"))
    );
}

#[test]
fn initial_topics_beyond_the_limit_are_neither_subscribed_nor_replayed() {
    let config = HubConfig::default().history(10).max_topics_per_client(1);
    let hub = Hub::with_config(config).unwrap();
    hub.publish("a", "a1");
    hub.publish("b", "b1");
    hub.publish("a", "a2");
    let options = ConnectOptions::websocket()
        .topics(["a", "b", "a"])
        .unwrap()
        .last_event_id(Some(0));
    let (mut conn, written) = connect(&hub, options);
    assert_eq!(conn.client().topics(), ["a"]);
    let (missed, messages) = drain(&mut conn, &written);
    assert_eq!(missed, None);
    assert_eq!(
        messages,
        [(1, "a1".to_owned()), (3, "a2".to_owned())],
        "b's history is not replayed: the client is not subscribed to it"
    );
}

#[test]
fn topic_histories_are_bounded_in_bytes_too() {
    let config = HubConfig::default().history(10).topic_history_bytes(25);
    assert_eq!(HubConfig::default().topic_history_bytes, 64 * 1024 * 1024);
    let hub = Hub::with_config(config).unwrap();
    hub.publish("a", "0123456789");
    hub.publish("b", "0123456789");
    assert_eq!(hub.topic_history_size(), (2, 2));
    hub.publish("c", "0123456789");
    assert_eq!(
        hub.topic_history_size(),
        (2, 2),
        "a, least recently published, dropped"
    );
    assert_eq!(
        HubConfig::default().topic_history_bytes(0).validate(),
        Err(hub_core::ConfigError::Zero("topic_history_bytes"))
    );
}

#[test]
fn a_connect_that_resumes_topics_expires_idle_histories_first() {
    let config = HubConfig::default().history(10).topic_idle(Duration::ZERO);
    let hub = Hub::with_config(config).unwrap();
    hub.publish("t", "t1"); // nobody subscribed: idle from now, and due at once
    let options = ConnectOptions::websocket()
        .topics(["t"])
        .unwrap()
        .last_event_id(Some(0));
    let (mut conn, written) = connect(&hub, options);
    let (missed, messages) = drain(&mut conn, &written);
    assert!(
        messages.is_empty(),
        "the idle history is gone: {messages:?}"
    );
    assert_eq!(
        missed.map(|m| m.last_event_id),
        Some(0),
        "and the resume says so"
    );
    assert_eq!(hub.topic_history_size(), (0, 0));
}
