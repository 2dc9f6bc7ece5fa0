//! SSE streams over topics on every adapter's SSE entry point (`subscribe_with` with
//! `ConnectOptions::topics`), over real sockets: a stream gets its topics' messages and the
//! broadcasts to everyone, nothing else, and its `Last-Event-ID` (one id sequence per hub)
//! resumes every one of its topics with no gap and no duplicate.
#![allow(clippy::unwrap_used)]

use hub_core::{Hub, HubConfig};
use hub_tests::bare::serve_hub;
use hub_tests::sse::SseClient;
use hub_tests::{send_with_id as send, wait_hub, Adapter};
use std::net::SocketAddr;

const ACCEPT: (&str, &str) = ("accept", "text/event-stream");

/// Opens `/sse-topics` for `topics`, resuming after `last` if given, and waits until the hub
/// has it in each of them.
async fn open(hub: &Hub, addr: SocketAddr, topics: &[&str], last: Option<u64>) -> SseClient {
    let query: Vec<String> = topics.iter().map(|t| format!("topic={t}")).collect();
    let path = format!("/sse-topics?{}", query.join("&"));
    let last = last.map(|id| id.to_string());
    let mut headers = vec![ACCEPT];
    if let Some(last) = &last {
        headers.push(("last-event-id", last));
    }
    let before: Vec<usize> = topics.iter().map(|t| hub.subscriber_count(t)).collect();
    let client = SseClient::get(addr, &path, &headers).await;
    assert_eq!(client.status, 200, "{path}");
    wait_hub(hub, "the stream to join its topics", |h| {
        topics
            .iter()
            .zip(&before)
            .all(|(t, n)| h.subscriber_count(t) == n + 1)
    })
    .await;
    client
}

/// Reads `expected.len()` events and checks each one's id and data.
async fn expect(stream: &mut SseClient, expected: &[(u64, String)]) {
    for (id, data) in expected {
        let event = stream.next().await;
        assert_eq!(
            (event.id.as_str(), event.data.as_str()),
            (id.to_string().as_str(), data.as_str()),
            "expected #{id} {data}"
        );
    }
}

async fn history_hub(adapter: Adapter) -> (Hub, SocketAddr) {
    let hub = Hub::with_config(HubConfig::default().history(100)).unwrap();
    let addr = serve_hub(adapter, &hub).await;
    (hub, addr)
}

async fn a_stream_of_one_topic_resumes_it_exactly(adapter: Adapter) {
    let (hub, addr) = history_hub(adapter).await;
    let mut first = open(&hub, addr, &["a"], None).await;
    let a1 = send(&hub, Some("a"), "a1");
    send(&hub, Some("b"), "b1");
    let x1 = send(&hub, None, "x1");
    let a2 = send(&hub, Some("a"), "a2");
    expect(&mut first, &[a1, x1.clone(), a2.clone()]).await;
    drop(first);
    wait_hub(&hub, "the stream to leave", |h| h.client_count() == 0).await;
    // while it is away: its topic, another, and everyone
    let a3 = send(&hub, Some("a"), "a3");
    send(&hub, Some("b"), "b2");
    let x2 = send(&hub, None, "x2");
    let a4 = send(&hub, Some("a"), "a4");
    let mut again = open(&hub, addr, &["a"], Some(a2.0)).await;
    // then live: nothing of the replay twice, nothing of b
    send(&hub, Some("b"), "b3");
    let a5 = send(&hub, Some("a"), "a5");
    expect(
        &mut again,
        &[a3.clone(), x2.clone(), a4.clone(), a5.clone()],
    )
    .await;
    drop(again);
    // from further back: the same topic's history, merged with the broadcasts, by id
    wait_hub(&hub, "the stream to leave", |h| h.client_count() == 0).await;
    let mut earlier = open(&hub, addr, &["a"], Some(x1.0)).await;
    expect(&mut earlier, &[a2, a3, x2, a4, a5]).await;
}

async fn a_stream_of_several_topics_resumes_each_without_a_gap(adapter: Adapter) {
    let (hub, addr) = history_hub(adapter).await;
    let mut first = open(&hub, addr, &["a", "b"], None).await;
    let a1 = send(&hub, Some("a"), "a1");
    send(&hub, Some("c"), "c1");
    let b1 = send(&hub, Some("b"), "b1");
    let x1 = send(&hub, None, "x1");
    expect(&mut first, &[a1, b1, x1.clone()]).await;
    drop(first);
    wait_hub(&hub, "the stream to leave", |h| h.client_count() == 0).await;
    let a2 = send(&hub, Some("a"), "a2");
    send(&hub, Some("c"), "c2");
    let b2 = send(&hub, Some("b"), "b2");
    let b3 = send(&hub, Some("b"), "b3");
    let x2 = send(&hub, None, "x2");
    let a3 = send(&hub, Some("a"), "a3");
    let mut again = open(&hub, addr, &["a", "b"], Some(x1.0)).await;
    send(&hub, Some("c"), "c3");
    let b4 = send(&hub, Some("b"), "b4");
    let a4 = send(&hub, Some("a"), "a4");
    // both topics' missed messages and the broadcast, in id order, then live
    expect(&mut again, &[a2, b2, b3, x2, a3, b4, a4]).await;
    assert_eq!(hub.subscriber_count("c"), 0);
}

async fn a_stream_gets_its_topics_and_broadcasts_only(adapter: Adapter) {
    let hub = Hub::new();
    let addr = serve_hub(adapter, &hub).await;
    let mut news = open(&hub, addr, &["news"], None).await;
    let mut sport = open(&hub, addr, &["sport"], None).await;
    let mut nothing = open(&hub, addr, &[], None).await;
    assert_eq!(hub.publish("news", "n1"), 1);
    assert_eq!(hub.publish("sport", "s1"), 1);
    assert_eq!(hub.publish("weather", "w1"), 0);
    assert_eq!(hub.broadcast("all"), 3);
    for (stream, mine) in [(&mut news, "n1"), (&mut sport, "s1")] {
        assert_eq!(stream.next().await.data, mine);
        assert_eq!(stream.next().await.data, "all");
    }
    assert_eq!(nothing.next().await.data, "all");
}

hub_tests::conformance!(
    a_stream_of_one_topic_resumes_it_exactly,
    a_stream_of_several_topics_resumes_each_without_a_gap,
    a_stream_gets_its_topics_and_broadcasts_only,
);
