//! The backplane seam: the `Local` handle, topic interest, and a topic's catch-up from the
//! cluster when a node starts receiving it (what a cluster backplane builds on).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{poll_once, RecordingTransport, StdTimer};
use hub_core::{
    Backplane, Broadcast, ConnectOptions, Connection, Hub, HubConfig, Local, Message, Outgoing,
    Subscribed,
};
use std::sync::{Arc, Mutex, OnceLock};

/// A cluster-like backplane: publishes go nowhere by themselves (the test plays the cluster
/// through the `Local` handle); it records interest changes and catches topics up.
#[derive(Default)]
struct Cluster {
    local: OnceLock<Local>,
    interest: Mutex<Vec<(String, bool)>>,
}

impl Backplane for Cluster {
    fn attach(&self, local: Local) {
        let _ = self.local.set(local);
    }
    fn broadcast(&self, _: &Local, _: Broadcast) -> usize {
        0
    }
    fn publish(&self, _: &Local, _: &str, _: Broadcast) -> usize {
        0
    }
    fn interest(&self, topic: &str, interested: bool) {
        self.interest
            .lock()
            .unwrap()
            .push((topic.to_string(), interested));
    }
    fn catches_up(&self) -> bool {
        true
    }
    fn may_arrive(&self, _: Option<&str>, id: u64) -> bool {
        id <= 1000 // "ids of the cluster's clock": anything up to 1000 may be on its way
    }
}

impl Cluster {
    fn local(&self) -> &Local {
        self.local.get().unwrap()
    }
    fn interest(&self) -> Vec<(String, bool)> {
        std::mem::take(&mut *self.interest.lock().unwrap())
    }
}

fn hub_with_cluster() -> (Hub, Arc<Cluster>) {
    let hub = Hub::with_config(HubConfig::default().history(100)).unwrap();
    let cluster = Arc::new(Cluster::default());
    hub.set_backplane(cluster.clone());
    (hub, cluster)
}

type Recorded = Arc<Mutex<Vec<Outgoing>>>;

fn connect(
    hub: &Hub,
    options: ConnectOptions,
) -> (Connection<RecordingTransport, StdTimer>, Recorded) {
    let written: Recorded = Arc::default();
    let connection = hub.connect(RecordingTransport(written.clone()), StdTimer, options);
    (connection, written)
}

/// Everything written so far, after driving the connection once: ids and texts, and `missed`
/// notices as `(0, "missed after N")`.
fn drained(
    connection: &mut Connection<RecordingTransport, StdTimer>,
    written: &Recorded,
) -> Vec<(u64, String)> {
    let _ = poll_once(connection);
    std::mem::take(&mut *written.lock().unwrap())
        .into_iter()
        .filter_map(|o| match o {
            Outgoing::Message { message, id, .. } => {
                Some((id.unwrap_or(0), message.as_text()?.to_string()))
            }
            Outgoing::Missed(m) => Some((0, format!("missed after {}", m.last_event_id))),
            _ => None,
        })
        .collect()
}

fn m(id: u64) -> (u64, Message) {
    (id, Message::text(format!("m{id}")))
}

fn expect(ids: impl IntoIterator<Item = u64>) -> Vec<(u64, String)> {
    ids.into_iter().map(|id| (id, format!("m{id}"))).collect()
}

#[test]
fn interest_is_reported_once_per_first_join_and_last_leave_in_order() {
    let (hub, cluster) = hub_with_cluster();
    let (a, _) = connect(&hub, ConnectOptions::websocket());
    let (b, _) = connect(&hub, ConnectOptions::websocket().topics(["t"]).unwrap());
    assert_eq!(cluster.interest(), [("t".to_string(), true)]);
    a.client().subscribe("t").unwrap();
    a.client().subscribe("u").unwrap();
    assert_eq!(cluster.interest(), [("u".to_string(), true)], "t had one");
    assert!(a.client().unsubscribe("t"));
    assert!(cluster.interest().is_empty(), "b still has t");
    b.client().close(1000u16, "bye");
    drop(b); // the connection ends: its topics go with it
    assert_eq!(cluster.interest(), [("t".to_string(), false)]);
    a.client().subscribe("t").unwrap();
    assert_eq!(cluster.interest(), [("t".to_string(), true)]);
    hub.shutdown();
    let mut gone = cluster.interest();
    gone.sort();
    assert_eq!(gone, [("t".to_string(), false), ("u".to_string(), false)]);
}

#[test]
fn a_backplane_attached_later_finds_the_topics_already_wanted() {
    let hub = Hub::new();
    let (_a, _) = connect(
        &hub,
        ConnectOptions::websocket().topics(["x", "y"]).unwrap(),
    );
    let cluster = Arc::new(Cluster::default());
    hub.set_backplane(cluster.clone());
    assert_eq!(cluster.local().topics(), ["x", "y"]);
}

#[test]
fn a_caught_up_topic_gives_each_waiting_subscriber_its_due_then_goes_live() {
    let (hub, cluster) = hub_with_cluster();
    let (mut resumer, resumer_out) = connect(&hub, ConnectOptions::websocket());
    let (mut fresh, fresh_out) = connect(&hub, ConnectOptions::websocket());
    let resumed = resumer.client().subscribe_from("t", 5).unwrap();
    assert!(
        resumed.pending,
        "the topic is new here: its history is on its way"
    );
    assert_eq!(fresh.client().subscribe("t"), Ok(Subscribed::Joined));
    assert!(drained(&mut resumer, &resumer_out).is_empty());
    let local = cluster.local();
    // the cluster's history of t, read once its live traffic flows here; interest began at 6
    let queued = local.catch_up("t", 6, (3..=8).map(m).collect(), true);
    assert_eq!(queued, 3 + 2);
    assert_eq!(drained(&mut resumer, &resumer_out), expect(6..=8));
    assert_eq!(drained(&mut fresh, &fresh_out), expect(7..=8));
    // live from here: a duplicate of what the catch-up gave is refused, the next goes out
    assert!(local.deliver_with_id(Some("t"), 8, m(8).1).is_err());
    assert_eq!(local.deliver_with_id(Some("t"), 9, m(9).1), Ok(2));
    assert_eq!(drained(&mut resumer, &resumer_out), expect([9]));
    assert_eq!(drained(&mut fresh, &fresh_out), expect([9]));
    assert_eq!(local.newest(Some("t")), 9);
    // a later resumer on the live topic is served from the local history at once
    let (mut late, late_out) = connect(&hub, ConnectOptions::websocket());
    let resumed = late.client().subscribe_from("t", 7).unwrap();
    assert!(!resumed.pending);
    assert_eq!(resumed.replayed, 2);
    assert_eq!(drained(&mut late, &late_out), expect(8..=9));
}

#[test]
fn a_catch_up_that_does_not_reach_back_tells_the_resumer_it_missed_messages() {
    let (hub, cluster) = hub_with_cluster();
    let (mut old, old_out) = connect(&hub, ConnectOptions::websocket());
    let (mut recent, recent_out) = connect(&hub, ConnectOptions::websocket());
    old.client().subscribe_from("t", 2).unwrap();
    recent.client().subscribe_from("t", 10).unwrap();
    // the stream was trimmed: it starts at 10
    cluster
        .local()
        .catch_up("t", 11, (10..=12).map(m).collect(), false);
    let mut want = vec![(0, "missed after 2".to_string())];
    want.extend(expect(10..=12));
    assert_eq!(drained(&mut old, &old_out), want);
    assert_eq!(
        drained(&mut recent, &recent_out),
        expect(11..=12),
        "the stream holds its id: nothing lost"
    );
}

#[test]
fn a_stream_created_with_topics_and_an_id_waits_for_the_catch_up() {
    let (hub, cluster) = hub_with_cluster();
    let options = ConnectOptions::sse(None)
        .topics(["a", "b"])
        .unwrap()
        .last_event_id(Some(4));
    let (mut stream, out) = connect(&hub, options);
    assert!(drained(&mut stream, &out).is_empty());
    let local = cluster.local();
    local.catch_up("b", 6, vec![m(3), m(5), m(7)], true);
    local.catch_up("a", 6, vec![m(4), m(6)], true);
    // each topic in its own order as its catch-up comes: a resume from 6 would get 7 again
    // (a duplicate, never a gap)
    assert_eq!(drained(&mut stream, &out), expect([5, 7, 6]));
    // a broadcast to everyone at or before the stream's id is not for it; after, it is
    assert_eq!(local.deliver_with_id(None, 4, m(4).1), Ok(0));
    assert_eq!(local.deliver_with_id(None, 5, m(5).1), Ok(1));
    assert_eq!(drained(&mut stream, &out), expect([5]));
    assert_eq!(local.deliver_with_id(Some("a"), 8, m(8).1), Ok(1));
    assert_eq!(drained(&mut stream, &out), expect([8]));
}

#[test]
fn a_topic_nobody_here_wants_any_more_keeps_no_stale_history() {
    let (hub, cluster) = hub_with_cluster();
    let (a, _) = connect(&hub, ConnectOptions::websocket());
    a.client().subscribe("t").unwrap();
    let local = cluster.local();
    local.catch_up("t", 0, vec![m(1), m(2)], true);
    assert_eq!(local.newest(Some("t")), 2);
    assert!(a.client().unsubscribe("t"));
    // the node stops receiving t: what it kept would give a resumer a silent gap
    assert_eq!(local.newest(Some("t")), 0);
    assert_eq!(hub.topic_history_size(), (0, 0));
    // and a catch-up for a topic nobody wants is ignored
    assert_eq!(local.catch_up("t", 0, vec![m(3)], true), 0);
}

#[test]
fn the_handle_does_not_keep_the_hub_alive() {
    let (hub, cluster) = hub_with_cluster();
    let local = cluster.local().clone();
    assert!(local.is_alive());
    drop(hub);
    drop(cluster);
    assert!(!local.is_alive());
    assert_eq!(local.deliver(Broadcast::ready(Message::text("x"))), 0);
    assert_eq!(local.deliver_with_id(None, 1, Message::text("x")), Ok(0));
    assert!(local.topics().is_empty());
}

#[test]
fn per_topic_ids_are_checked_per_topic() {
    let hub = Hub::with_config(HubConfig::default().history(10)).unwrap();
    let local = common::local_of(&hub);
    let (_a, _) = connect(
        &hub,
        ConnectOptions::websocket().topics(["a", "b"]).unwrap(),
    );
    assert_eq!(local.deliver_with_id(Some("a"), 100, m(100).1), Ok(1));
    // another topic's sequence is its own: a lower id is fine there
    assert_eq!(local.deliver_with_id(Some("b"), 50, m(50).1), Ok(1));
    assert!(local.deliver_with_id(Some("a"), 99, m(99).1).is_err());
    assert_eq!(local.remember(Some("a"), 101, m(101).1), Ok(()));
    assert_eq!(local.newest(Some("a")), 101);
    local.record_gap(Some("b"), 60);
    assert_eq!(
        local.newest(Some("b")),
        0,
        "b's history is gone with the gap"
    );
}

#[test]
fn live_messages_wait_with_a_waiting_subscriber_and_come_once_through_the_catch_up() {
    let (hub, cluster) = hub_with_cluster();
    let (mut resumer, out) = connect(&hub, ConnectOptions::websocket());
    assert!(resumer.client().subscribe_from("t", 3).unwrap().pending);
    let local = cluster.local();
    // live traffic flows before the cluster's history is read: not ahead of the replay
    assert_eq!(local.deliver_with_id(Some("t"), 5, m(5).1), Ok(0));
    assert!(drained(&mut resumer, &out).is_empty());
    // the history read afterwards holds it too: delivered once, in order
    local.catch_up("t", 4, (3..=5).map(m).collect(), true);
    assert_eq!(drained(&mut resumer, &out), expect(4..=5));
    assert_eq!(local.deliver_with_id(Some("t"), 6, m(6).1), Ok(1));
    assert_eq!(drained(&mut resumer, &out), expect([6]));
}
