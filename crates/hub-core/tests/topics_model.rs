//! Model-based property test of topics: random sequences of connect (with initial topics),
//! subscribe, unsubscribe, publish, broadcast, flush, disconnect and eviction (small queues
//! that overflow) against a plain model. Every client must receive exactly the messages of
//! the topics it held at publish time (and every broadcast), in order, once.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{close_code, poll_once, texts_of, RecordingTransport, StdTimer};
use hub_core::{Client, ConnectOptions, Connection, Hub, HubConfig, Outgoing, TopicError};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];
const CAPACITY: usize = 4;
const MAX_TOPICS: usize = 3;
/// Cases run; each is a sequence of up to 60 operations.
const CASES: u32 = 10_000;

#[derive(Clone, Debug)]
enum Op {
    Connect(Vec<usize>),
    Subscribe(usize, usize),
    Unsubscribe(usize, usize),
    Publish(usize),
    Broadcast,
    Flush(usize),
    Disconnect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => proptest::collection::vec(0..TOPICS.len(), 0..3).prop_map(Op::Connect),
        4 => (any::<usize>(), 0..TOPICS.len()).prop_map(|(c, t)| Op::Subscribe(c, t)),
        2 => (any::<usize>(), 0..TOPICS.len()).prop_map(|(c, t)| Op::Unsubscribe(c, t)),
        6 => (0..TOPICS.len()).prop_map(Op::Publish),
        1 => Just(Op::Broadcast),
        3 => any::<usize>().prop_map(Op::Flush),
        1 => any::<usize>().prop_map(Op::Disconnect),
    ]
}

type Conn = Connection<RecordingTransport, StdTimer>;

/// One client as the model sees it, with the real connection beside it.
struct Slot {
    connection: Option<Conn>,
    client: Client,
    written: Arc<Mutex<Vec<Outgoing>>>,
    // the model
    topics: BTreeSet<usize>,
    connected: bool,
    evicted: bool,
    flushed: Vec<String>,
    pending: Vec<String>,
}

impl Slot {
    /// The model's delivery: queued, or the queue is full and the client is evicted.
    fn deliver(&mut self, text: &str) -> bool {
        if !self.connected {
            return false;
        }
        if self.pending.len() == CAPACITY {
            self.connected = false;
            self.evicted = true;
            self.pending.clear();
            self.topics.clear();
            return false;
        }
        self.pending.push(text.to_owned());
        true
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let hub = Hub::with_config(
        HubConfig::default()
            .queue_capacity(CAPACITY)
            .max_topics_per_client(MAX_TOPICS),
    )
    .unwrap();
    let mut slots: Vec<Slot> = Vec::new();
    let mut n = 0u64;
    for op in ops {
        match op {
            Op::Connect(initial) => {
                let names: Vec<&str> = initial.iter().map(|t| TOPICS[*t]).collect();
                let options = ConnectOptions::websocket().topics(names).unwrap();
                let written = Arc::new(Mutex::new(Vec::new()));
                let connection =
                    hub.connect(RecordingTransport(written.clone()), StdTimer, options);
                slots.push(Slot {
                    client: connection.client().clone(),
                    connection: Some(connection),
                    written,
                    topics: initial.into_iter().collect(),
                    connected: true,
                    evicted: false,
                    flushed: Vec::new(),
                    pending: Vec::new(),
                });
            }
            Op::Subscribe(c, t) if !slots.is_empty() => {
                let len = slots.len();
                let slot = &mut slots[c % len];
                let result = slot.client.subscribe(TOPICS[t]);
                if !slot.connected {
                    prop_assert_eq!(result, Err(TopicError::ClientGone));
                } else if slot.topics.contains(&t) {
                    prop_assert_eq!(result, Ok(hub_core::Subscribed::Already));
                } else if slot.topics.len() == MAX_TOPICS {
                    prop_assert_eq!(result, Err(TopicError::TooManyTopics { limit: MAX_TOPICS }));
                } else {
                    prop_assert_eq!(result, Ok(hub_core::Subscribed::Joined));
                    slot.topics.insert(t);
                }
            }
            Op::Unsubscribe(c, t) if !slots.is_empty() => {
                let len = slots.len();
                let slot = &mut slots[c % len];
                let was = slot.topics.remove(&t);
                prop_assert_eq!(slot.client.unsubscribe(TOPICS[t]), was);
            }
            Op::Publish(t) => {
                n += 1;
                let text = format!("{}:{n}", TOPICS[t]);
                let mut expected = 0;
                for slot in slots.iter_mut().filter(|s| s.topics.contains(&t)) {
                    expected += usize::from(slot.deliver(&text));
                }
                prop_assert_eq!(hub.publish(TOPICS[t], text.clone()), expected);
            }
            Op::Broadcast => {
                n += 1;
                let text = format!("all:{n}");
                let mut expected = 0;
                for slot in &mut slots {
                    expected += usize::from(slot.deliver(&text));
                }
                prop_assert_eq!(hub.broadcast(text.clone()), expected);
            }
            Op::Flush(c) if !slots.is_empty() => {
                let len = slots.len();
                let slot = &mut slots[c % len];
                if let Some(connection) = slot.connection.as_mut() {
                    let _ = poll_once(connection);
                }
                let pending = std::mem::take(&mut slot.pending);
                slot.flushed.extend(pending);
            }
            Op::Disconnect(c) if !slots.is_empty() => {
                let len = slots.len();
                let slot = &mut slots[c % len];
                slot.connection = None; // the driver leaves
                slot.connected = false;
                slot.pending.clear();
                slot.topics.clear();
            }
            _ => {}
        }
        // the index matches the model after every step
        for (t, name) in TOPICS.iter().enumerate() {
            let members = slots.iter().filter(|s| s.topics.contains(&t)).count();
            prop_assert_eq!(hub.subscriber_count(name), members, "topic {}", name);
        }
        let live_topics = (0..TOPICS.len())
            .filter(|t| slots.iter().any(|s| s.topics.contains(t)))
            .count();
        prop_assert_eq!(hub.topic_count(), live_topics);
    }
    for slot in &mut slots {
        let model: Vec<String> = slot.topics.iter().map(|t| TOPICS[*t].to_owned()).collect();
        prop_assert_eq!(slot.client.topics(), model);
        if let Some(connection) = slot.connection.as_mut() {
            let _ = poll_once(connection);
        }
        let still_driven = slot.connection.is_some();
        let written = slot.written.lock().unwrap().clone();
        let mut expected = slot.flushed.clone();
        expected.extend(slot.pending.iter().cloned());
        prop_assert_eq!(texts_of(&written), expected);
        if slot.evicted && still_driven {
            prop_assert_eq!(written.last().and_then(close_code), Some(1008));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_client_gets_exactly_its_topics_messages_in_order_once(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        run(ops)?;
    }
}
