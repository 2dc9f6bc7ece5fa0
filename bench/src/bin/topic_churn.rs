//! S8's in-process measurement: `Client::subscribe` + `Client::unsubscribe` pairs a second on
//! one thread, with real clients registered in a real hub (on a transport that never moves:
//! nothing is driven, only the topic index is exercised). Prints one JSON object.
//!
//! ```text
//! topic_churn --clients N --topics M --seconds T
//! ```
//!
//! Every client first holds 10 topics (`M` topics in all, 10 subscribers each when `N = M`).
//! Then two cases, each for `T` seconds, the pairs walking the clients round-robin:
//! **existing**, a client joins and leaves a topic that has other subscribers (a user
//! entering and leaving a busy room); **new**, a topic nobody else holds, so every pair
//! creates the topic and removes it again (the worst case).

use futures_util::{Sink, Stream};
use hub_core::{
    ConnectOptions, Connection, Hub, Incoming, Outgoing, Subscribed, Timer, TransportError,
};
use serde_json::json;
use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

/// A transport that never yields a frame and accepts every write: the client stays
/// registered and nothing is ever driven.
struct Still;

impl Stream for Still {
    type Item = Result<Incoming, TransportError>;
    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Sink<Outgoing> for Still {
    type Error = TransportError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, _: Outgoing) -> Result<(), Self::Error> {
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl hub_core::Transport for Still {}

/// A clock whose sleeps never end (nothing is driven, so none is awaited).
struct NoTimer;

impl Timer for NoTimer {
    type Sleep = std::future::Pending<()>;
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, _: Instant) -> Self::Sleep {
        std::future::pending()
    }
}

/// Subscribe + unsubscribe pairs a second for `seconds`, round-robin over the clients, client
/// `c` on topic `topic(c)`; and how many pairs that was.
fn churn<'t>(
    connections: &[Connection<Still, NoTimer>],
    topic: impl Fn(usize) -> &'t str,
    seconds: f64,
) -> Result<(f64, u64), Error> {
    let limit = Duration::from_secs_f64(seconds);
    let (mut pairs, mut c) = (0u64, 0usize);
    let start = Instant::now();
    while start.elapsed() < limit {
        // the clock is read once per 1,024 pairs
        for _ in 0..1024 {
            let client = connections[c].client();
            let topic = topic(c);
            if client.subscribe(topic)? != Subscribed::Joined {
                return Err(format!("client {c} already had {topic}").into());
            }
            if !client.unsubscribe(topic) {
                return Err("an unsubscribe found no subscription".into());
            }
            c = (c + 1) % connections.len();
        }
        pairs += 1024;
    }
    Ok((pairs as f64 / start.elapsed().as_secs_f64(), pairs))
}

fn main() -> Result<(), Error> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        args.insert(k.trim_start_matches("--").to_string(), v);
    }
    let get = |k: &str, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let clients: usize = get("clients", "10000").parse()?;
    let topic_count: usize = get("topics", "10000").parse()?;
    let seconds: f64 = get("seconds", "3").parse()?;
    if clients == 0 || topic_count == 0 {
        return Err("--clients and --topics must be at least 1".into());
    }
    let hub = Hub::new();
    let connections: Vec<_> = (0..clients)
        .map(|_| hub.connect(Still, NoTimer, ConnectOptions::websocket()))
        .collect();
    // "existing": client c holds topics c + k * step (k < 10), ten subscribers a topic when
    // there are as many clients as topics, and churns topic c + step / 2, never one of its own
    let busy: Vec<String> = (0..topic_count).map(|i| format!("room:{i}")).collect();
    let step = topic_count / 10;
    if step < 2 {
        return Err("--topics must be at least 20".into());
    }
    for (c, connection) in connections.iter().enumerate() {
        for k in 0..10 {
            connection
                .client()
                .subscribe(&busy[(c + k * step) % topic_count])?;
        }
    }
    let subscriptions = clients * 10;
    let topics_before = hub.topic_count();
    let existing = churn(
        &connections,
        |c| &busy[(c + step / 2) % topic_count],
        seconds,
    )?;
    // "new": topics nobody else holds, so each pair creates one and removes it
    let fresh: Vec<String> = (0..topic_count).map(|i| format!("fresh:{i}")).collect();
    let new = churn(&connections, |c| &fresh[c % topic_count], seconds)?;
    if hub.topic_count() != topics_before {
        return Err("the churn left topics behind".into());
    }
    let result = json!({
        "clients": clients,
        "topics": topics_before,
        "subscriptions": subscriptions,
        "existing_pairs_per_s": existing.0,
        "existing_pairs": existing.1,
        "new_pairs_per_s": new.0,
        "new_pairs": new.1,
    });
    #[allow(clippy::print_stdout)] // the figures are this program's output
    {
        println!("{result}");
    }
    Ok(())
}
