//! Topics on every server path: WebSocket clients in different topics get only their topic's
//! messages, a WebSocket joining a topic later resumes it, and an SSE subscriber created with
//! an initial topic gets that topic only. (SSE resume: `sse_topics.rs`; the examples' rooms:
//! `rooms.rs`.)
#![allow(clippy::unwrap_used)]

use hub_core::Hub;
use hub_tests::bare::{serve_hub, NEWS};
use hub_tests::sse::SseClient;
use hub_tests::{connect, next_text, send_with_id, wait_hub, Adapter, Server};

async fn each_client_gets_only_its_topics_messages(adapter: Adapter) {
    // WebSocket: the example server, whose upgrades take each adapter's own path (actix's
    // lean path included); the subscriptions are made from the application's side
    let server = Server::start(adapter).await;
    let hub = server.app.chat.clone();
    let mut ws_a = connect(&server.url("/ws/chat")).await;
    wait_hub(&hub, "the first client", |h| h.client_count() == 1).await;
    let a = hub.clients().pop().unwrap();
    a.subscribe("a").unwrap();
    let mut ws_b = connect(&server.url("/ws/chat")).await;
    wait_hub(&hub, "the second client", |h| h.client_count() == 2).await;
    let b = hub.clients().into_iter().find(|c| *c != a).unwrap();
    b.subscribe("b").unwrap();
    // SSE: each adapter's SSE entry point with ConnectOptions carrying an initial topic
    let sse_hub = Hub::new();
    let addr = serve_hub(adapter, &sse_hub).await;
    let mut sse = SseClient::get(addr, "/sse-news", &[("accept", "text/event-stream")]).await;
    assert_eq!(sse.status, 200);
    // subscribed as it was registered: no window in which it is connected but not in NEWS
    wait_hub(&sse_hub, "the SSE subscriber", |h| h.client_count() == 1).await;
    assert_eq!(sse_hub.subscriber_count(NEWS), 1);

    assert_eq!(hub.publish("a", "for a"), 1);
    assert_eq!(hub.publish("b", "for b"), 1);
    assert_eq!(hub.publish(NEWS, "news, but nobody here takes it"), 0);
    assert_eq!(hub.broadcast("for all"), 2);
    assert_eq!(sse_hub.publish("elsewhere", "not news"), 0);
    assert_eq!(sse_hub.publish(NEWS, "for news"), 1);
    assert_eq!(sse_hub.broadcast("for all"), 1);
    // each gets its topic's message, then the broadcast: nothing of the others' in between
    assert_eq!(next_text(&mut ws_a).await, "for a");
    assert_eq!(next_text(&mut ws_a).await, "for all");
    assert_eq!(next_text(&mut ws_b).await, "for b");
    assert_eq!(next_text(&mut ws_b).await, "for all");
    assert_eq!(sse.next().await.data, "for news");
    assert_eq!(sse.next().await.data, "for all");

    drop(ws_a);
    wait_hub(&hub, "a to leave its topic", |h| {
        h.subscriber_count("a") == 0
    })
    .await;
    assert_eq!(hub.topic_count(), 1, "only b is left");
}

/// A WebSocket that joins a topic later, from a last-seen id (`Client::subscribe_from`), gets
/// the topic's messages it missed, then live ones, over each adapter's connection: no gap, no
/// duplicate, nothing of other topics.
async fn a_websocket_joining_a_topic_later_resumes_it(adapter: Adapter) {
    let server = Server::start(adapter).await; // the chat keeps history
    let hub = server.app.chat.clone();
    let mut ws = connect(&server.url("/ws/chat")).await;
    wait_hub(&hub, "the client", |h| h.client_count() == 1).await;
    let client = hub.clients().pop().unwrap();
    let (seen, _) = send_with_id(&hub, Some("a"), "a1");
    send_with_id(&hub, Some("b"), "b1");
    send_with_id(&hub, Some("a"), "a2");
    send_with_id(&hub, Some("a"), "a3");
    let resumed = client.subscribe_from("a", seen).unwrap();
    assert_eq!((resumed.replayed, resumed.missed), (2, None));
    assert_eq!(hub.publish("b", "b2"), 0);
    assert_eq!(hub.publish("a", "a4"), 1);
    assert_eq!(hub.broadcast("all"), 1);
    for expected in ["a2", "a3", "a4", "all"] {
        assert_eq!(next_text(&mut ws).await, expected);
    }
    // joining again changes nothing and replays nothing
    let again = client.subscribe_from("a", seen).unwrap();
    assert_eq!(again.replayed, 0);
    assert_eq!(hub.broadcast("end"), 1);
    assert_eq!(next_text(&mut ws).await, "end");
}

hub_tests::conformance!(
    each_client_gets_only_its_topics_messages,
    a_websocket_joining_a_topic_later_resumes_it,
);
