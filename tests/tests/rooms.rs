//! The examples' rooms (`example_common::rooms`, the contract in `example_common`'s docs) on
//! every server path, over WebSocket and SSE: join and leave with their replies, a room's
//! messages to its members only, everything else to everyone, errors to the sender alone on a
//! connection that stays open, and `/events/chat?room=r` with ids and `Last-Event-ID` resume.
#![allow(clippy::unwrap_used)]

use hub_tests::sse::SseClient;
use hub_tests::{connect, next_text, send_text, wait_hub, Adapter, Server, Settings, Ws};
use serde_json::{json, Value};

const ACCEPT: (&str, &str) = ("accept", "text/event-stream");

async fn next_json(ws: &mut Ws) -> Value {
    let text = next_text(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

async fn send_json(ws: &mut Ws, message: Value) {
    send_text(ws, &message.to_string()).await;
}

/// Joins `room` and checks the reply.
async fn join(ws: &mut Ws, room: &str) {
    send_json(ws, json!({"type": "join", "room": room})).await;
    assert_eq!(next_json(ws).await, json!({"type": "joined", "room": room}));
}

fn chat(room: &str, text: &str) -> Value {
    json!({"type": "chat", "room": room, "text": text})
}

/// Sends a message to everyone from `from` and checks that it is the next message of each of
/// `all`: whatever they were not meant to get would have come before it.
async fn nothing_else_before(from: usize, all: &mut [&mut Ws], tag: &str) {
    let everyone = json!({"type": "chat", "text": tag});
    send_json(all[from], everyone.clone()).await;
    for ws in all.iter_mut() {
        assert_eq!(next_json(ws).await, everyone);
    }
}

async fn rooms_reach_their_members_only(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let url = server.url("/ws/chat");
    let (mut a, mut b, mut c) = (
        connect(&url).await,
        connect(&url).await,
        connect(&url).await,
    );
    join(&mut a, "r1").await;
    join(&mut b, "r2").await;
    join(&mut c, "r1").await;
    join(&mut c, "r2").await;
    join(&mut c, "r2").await; // already a member: the same reply
    assert_eq!(server.app.chat.subscriber_count("r1"), 2);
    assert_eq!(server.app.chat.subscriber_count("r2"), 2);

    // to r1: its members, the sender among them, unchanged
    send_json(&mut a, chat("r1", "hi r1")).await;
    assert_eq!(next_json(&mut a).await, chat("r1", "hi r1"));
    assert_eq!(next_json(&mut c).await, chat("r1", "hi r1"));
    send_json(&mut b, chat("r2", "hi r2")).await;
    assert_eq!(next_json(&mut b).await, chat("r2", "hi r2"));
    assert_eq!(next_json(&mut c).await, chat("r2", "hi r2"));
    // to a room one is not in: its members only, not the sender
    send_json(&mut a, chat("r2", "from outside")).await;
    assert_eq!(next_json(&mut b).await, chat("r2", "from outside"));
    assert_eq!(next_json(&mut c).await, chat("r2", "from outside"));
    nothing_else_before(0, &mut [&mut a, &mut b, &mut c], "everyone 1").await;

    // the seed's messages go to everyone unchanged: not JSON, other types, chat without room
    send_text(&mut b, "plain text").await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(next_text(ws).await, "plain text");
    }
    let other = json!({"type": "typing", "room": "r1"});
    send_json(&mut b, other.clone()).await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(next_json(ws).await, other);
    }

    // leaving: the reply, then nothing more of the room
    send_json(&mut c, json!({"type": "leave", "room": "r1"})).await;
    assert_eq!(
        next_json(&mut c).await,
        json!({"type": "left", "room": "r1"})
    );
    send_json(&mut a, chat("r1", "after c left")).await;
    assert_eq!(next_json(&mut a).await, chat("r1", "after c left"));
    nothing_else_before(2, &mut [&mut a, &mut b, &mut c], "everyone 2").await;
    assert_eq!(c.close(None).await.ok(), Some(()));
    wait_hub(&server.app.chat, "c to leave its rooms", |h| {
        h.subscriber_count("r2") == 1
    })
    .await;
}

async fn bad_room_requests_get_an_error_and_the_connection_stays(adapter: Adapter) {
    let server = Server::with(adapter, Settings::default(), |c| c.max_topics_per_client(2)).await;
    let url = server.url("/ws/chat");
    let (mut a, mut b) = (connect(&url).await, connect(&url).await);
    let long = "x".repeat(257);
    let cases = [
        (json!({"type": "join", "room": ""}), "must not be empty"),
        (json!({"type": "join", "room": long}), "at most 256 bytes"),
        (
            json!({"type": "join", "room": "a\u{7}b"}),
            "control characters",
        ),
        (json!({"type": "join"}), "\"room\" must be a string"),
        (
            json!({"type": "leave", "room": 7}),
            "\"room\" must be a string",
        ),
        (json!({"type": "leave", "room": "r"}), "not in this room"),
        (json!({"type": "leave", "room": ""}), "must not be empty"),
        (
            json!({"type": "chat", "room": "", "text": "x"}),
            "must not be empty",
        ),
        (
            json!({"type": "chat", "room": ["r"], "text": "x"}),
            "must be a string",
        ),
    ];
    for (request, why) in &cases {
        send_json(&mut a, request.clone()).await;
        let reply = next_json(&mut a).await;
        assert_eq!(reply["type"], "error", "{request}: {reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(
            error.contains(why),
            "{request}: {error:?} does not say {why:?}"
        );
    }
    // past the per-client limit
    join(&mut a, "one").await;
    join(&mut a, "two").await;
    send_json(&mut a, json!({"type": "join", "room": "three"})).await;
    let reply = next_json(&mut a).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert!(reply["error"]
        .as_str()
        .unwrap()
        .contains("already subscribed to 2 topics"));
    assert_eq!(server.app.chat.subscriber_count("three"), 0);
    // the errors went to the sender only, and its connection still works
    nothing_else_before(0, &mut [&mut a, &mut b], "still here").await;
    assert_eq!(server.app.chat.client_count(), 2);
}

async fn a_rooms_event_stream_resumes_it_and_nothing_of_other_rooms(adapter: Adapter) {
    let server = Server::start(adapter).await;
    let (addr, hub) = (server.addr, server.app.chat.clone());
    let url = server.url("/ws/chat");
    let (mut a, mut b) = (connect(&url).await, connect(&url).await);
    join(&mut a, "café bar").await;
    join(&mut b, "r2").await;
    let path = "/events/chat?room=caf%C3%A9+bar";
    let mut first = SseClient::get(addr, path, &[ACCEPT]).await;
    assert_eq!(first.status, 200);
    wait_hub(&hub, "the stream in the room", |h| {
        h.subscriber_count("café bar") == 2
    })
    .await;
    // each sender gets its own message back: the hub has published it before the next
    send_json(&mut a, chat("café bar", "m1")).await;
    assert_eq!(next_json(&mut a).await, chat("café bar", "m1"));
    send_json(&mut b, chat("r2", "not for the stream")).await;
    assert_eq!(next_json(&mut b).await, chat("r2", "not for the stream"));
    send_json(&mut b, json!({"type": "chat", "text": "everyone"})).await;
    let m1 = first.next().await;
    assert_eq!(
        serde_json::from_str::<Value>(&m1.data).unwrap()["text"],
        "m1"
    );
    let everyone = first.next().await;
    assert_eq!(
        serde_json::from_str::<Value>(&everyone.data).unwrap()["text"],
        "everyone"
    );
    let last: u64 = everyone.id.parse().unwrap();
    assert!(m1.id.parse::<u64>().unwrap() < last);
    drop(first);
    wait_hub(&hub, "the stream to leave", |h| {
        h.subscriber_count("café bar") == 1
    })
    .await;
    // missed while away: two of the room's, one of another room's
    assert_eq!(next_json(&mut a).await["text"], "everyone");
    send_json(&mut a, chat("café bar", "m2")).await;
    assert_eq!(next_json(&mut a).await, chat("café bar", "m2"));
    send_json(&mut b, chat("r2", "still not for the stream")).await;
    assert_eq!(next_json(&mut b).await["text"], "everyone");
    assert_eq!(
        next_json(&mut b).await,
        chat("r2", "still not for the stream")
    );
    send_json(&mut a, chat("café bar", "m3")).await;
    assert_eq!(next_json(&mut a).await, chat("café bar", "m3"));
    let last = last.to_string();
    let mut again = SseClient::get(addr, path, &[ACCEPT, ("last-event-id", &last)]).await;
    assert_eq!(again.status, 200);
    wait_hub(&hub, "the stream to return", |h| {
        h.subscriber_count("café bar") == 2
    })
    .await;
    send_json(&mut a, chat("café bar", "m4")).await;
    let mut ids = vec![last.parse::<u64>().unwrap()];
    for text in ["m2", "m3", "m4"] {
        let event = again.next().await;
        assert_eq!(
            serde_json::from_str::<Value>(&event.data).unwrap()["text"],
            text
        );
        ids.push(event.id.parse().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
}

async fn an_invalid_room_on_the_event_stream_is_a_400(adapter: Adapter) {
    let server = Server::start(adapter).await;
    for query in ["room=", "room=a%0Ab", &format!("room={}", "x".repeat(300))] {
        let path = format!("/events/chat?{query}");
        let client = SseClient::get(server.addr, &path, &[ACCEPT]).await;
        assert_eq!(client.status, 400, "{path}");
        let content_type = client.headers.get("content-type").unwrap();
        assert_eq!(content_type, "text/plain; charset=utf-8", "{path}");
    }
    let (status, head, mut stream) = hub_tests::raw::request(
        server.addr,
        &format!(
            "GET /events/chat?room= HTTP/1.1\r\nHost: {}\r\n\r\n",
            server.addr
        ),
    )
    .await;
    assert_eq!(status, 400, "{head}");
    let body = hub_tests::raw::read_until(&mut stream, |b| b.ends_with(b"\n")).await;
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.starts_with("invalid room \"\": a topic name must not be empty"),
        "{body:?}"
    );
    assert_eq!(server.app.chat.client_count(), 0);
}

hub_tests::conformance!(
    rooms_reach_their_members_only,
    bad_room_requests_get_an_error_and_the_connection_stays,
    a_rooms_event_stream_resumes_it_and_nothing_of_other_rooms,
    an_invalid_room_on_the_event_stream_is_a_400,
);
