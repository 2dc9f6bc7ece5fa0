//! Topics: validation, limits, departures and initial topics.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{poll_once, texts_of, RecordingTransport, StdTimer, StillTransport};
use hub_core::{
    Backplane, Broadcast, ConfigError, ConnectOptions, Hub, HubConfig, Local, Subscribed,
    TopicError, MAX_TOPIC_LEN,
};
use std::sync::{Arc, Mutex};

#[test]
fn bad_names_are_refused_with_a_clear_error_and_nothing_changes() {
    let hub = Hub::new();
    let connection = hub.connect(StillTransport, StdTimer, ConnectOptions::default());
    let client = connection.client().clone();
    let long = "x".repeat(MAX_TOPIC_LEN + 1);
    for (name, error) in [
        ("", TopicError::Empty),
        ("a\u{0}b", TopicError::ControlCharacter { at: 1 }),
        ("tab\there", TopicError::ControlCharacter { at: 3 }),
        ("\u{7f}", TopicError::ControlCharacter { at: 0 }),
        (long.as_str(), TopicError::TooLong { len: 257 }),
    ] {
        assert_eq!(client.subscribe(name), Err(error.clone()), "{name:?}");
        assert!(!error.to_string().is_empty());
        assert_eq!(hub.publish(name, "x"), 0);
    }
    assert!(
        client.subscribe(&"x".repeat(MAX_TOPIC_LEN)).is_ok(),
        "256 bytes is fine"
    );
    assert!(client.subscribe("ünïcode/ok:1").is_ok());
    assert_eq!(hub.topic_count(), 2);
    assert_eq!(client.queued(), 0);
    assert_eq!(
        ConnectOptions::websocket().topics(["ok", ""]).err(),
        Some(TopicError::Empty)
    );
}

#[test]
fn the_topic_limit_refuses_the_next_subscribe_only() {
    let hub = Hub::with_config(HubConfig::default().max_topics_per_client(2)).unwrap();
    assert_eq!(HubConfig::default().max_topics_per_client, 1024);
    let connection = hub.connect(StillTransport, StdTimer, ConnectOptions::default());
    let client = connection.client().clone();
    assert_eq!(client.subscribe("a"), Ok(Subscribed::Joined));
    assert_eq!(client.subscribe("b"), Ok(Subscribed::Joined));
    assert_eq!(
        client.subscribe("b"),
        Ok(Subscribed::Already),
        "not a third"
    );
    assert_eq!(
        client.subscribe("c"),
        Err(TopicError::TooManyTopics { limit: 2 })
    );
    assert_eq!(client.topics(), ["a", "b"]);
    assert!(client.unsubscribe("a"));
    assert!(
        !client.unsubscribe("a"),
        "not subscribed: a no-op that says so"
    );
    assert_eq!(client.subscribe("c"), Ok(Subscribed::Joined));
    assert_eq!(
        HubConfig::default().max_topics_per_client(0).validate(),
        Err(ConfigError::Zero("max_topics_per_client"))
    );
}

#[test]
fn a_client_that_leaves_leaves_all_its_topics_whatever_the_reason() {
    let hub = Hub::with_config(HubConfig::default().queue_capacity(1)).unwrap();
    let connect = || hub.connect(StillTransport, StdTimer, ConnectOptions::default());
    let (closed, evicted, dropped, kept) = (connect(), connect(), connect(), connect());
    for c in [&closed, &evicted, &dropped, &kept] {
        c.client().subscribe("t").unwrap();
        c.client().subscribe("u").unwrap();
    }
    assert_eq!(hub.subscriber_count("t"), 4);
    assert!(closed.client().close(1000, "bye"));
    evicted.client().send("fills the queue").unwrap();
    let evicted_client = evicted.client().clone();
    drop(dropped);
    assert_eq!(hub.publish("t", "x"), 1, "evicted by this publish");
    assert!(!evicted_client.is_connected());
    assert_eq!(hub.subscribers("t"), vec![kept.client().clone()]);
    assert_eq!(hub.subscriber_count("u"), 1);
    assert_eq!(evicted_client.subscribe("t"), Err(TopicError::ClientGone));
    assert!(evicted_client.topics().is_empty());
    hub.shutdown();
    assert_eq!(hub.topic_count(), 0, "shutdown empties the index");
    assert_eq!(hub.subscriber_count("t"), 0);
}

#[test]
fn initial_topics_are_held_from_the_moment_of_connecting() {
    let hub = Hub::new();
    let written = Arc::new(Mutex::new(Vec::new()));
    let options = ConnectOptions::sse(None).topics(["news"]).unwrap();
    let mut connection = hub.connect(RecordingTransport(written.clone()), StdTimer, options);
    assert_eq!(connection.client().topics(), ["news"]);
    assert_eq!(hub.publish("news", "n1"), 1);
    assert_eq!(hub.publish("sport", "s1"), 0);
    assert_eq!(hub.broadcast("everyone"), 1);
    let _ = poll_once(&mut connection);
    assert_eq!(texts_of(&written.lock().unwrap()), ["n1", "everyone"]);
}

#[test]
fn initial_topics_beyond_the_limit_are_refused_not_fatal() {
    let hub = Hub::with_config(HubConfig::default().max_topics_per_client(1)).unwrap();
    let options = ConnectOptions::websocket().topics(["a", "b"]).unwrap();
    let connection = hub.connect(StillTransport, StdTimer, options);
    assert_eq!(connection.client().topics(), ["a"]);
    assert!(connection.client().is_connected());
}

/// A backplane that knows nothing of topics: everything it gets, it delivers to everyone.
struct Naive;

impl Backplane for Naive {
    fn broadcast(&self, local: &Local, mut message: Broadcast) -> usize {
        local.deliver_without_id(Broadcast::ready(message.message(None)))
    }
}

#[test]
fn a_custom_backplane_never_sends_a_topic_publish_to_everyone() {
    let hub = Hub::new();
    hub.set_backplane(Arc::new(Naive));
    let connect = || hub.connect(StillTransport, StdTimer, ConnectOptions::default());
    let (member, outsider) = (connect(), connect());
    member.client().subscribe("room").unwrap();
    assert_eq!(hub.publish("room", "for the room"), 1);
    assert_eq!(member.client().queued(), 1);
    assert_eq!(outsider.client().queued(), 0, "not subscribed: nothing");
    assert_eq!(
        hub.broadcast("everyone"),
        2,
        "broadcasts still reach everyone"
    );
    assert_eq!(outsider.client().queued(), 1);
}
