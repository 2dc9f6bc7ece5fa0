//! The seed's stream API on a virtual clock: heartbeats, batching, bounds, closing.
#![allow(clippy::unwrap_used, missing_docs)]

use futures_util::StreamExt;
use sse_core::{SseConfig, SseError, SseStream};
use std::pin::Pin;
use std::time::{Duration, Instant};

struct VirtualTimer;

impl hub_core::Timer for VirtualTimer {
    type Sleep = Pin<Box<tokio::time::Sleep>>;
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

fn text(b: &bytes::Bytes) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[tokio::test(start_paused = true)]
async fn heartbeat_every_15_seconds_for_an_hour() {
    let (stream, mut body) = SseStream::new(SseConfig::default(), VirtualTimer);
    let start = tokio::time::Instant::now();
    assert_eq!(text(&body.next().await.unwrap()), ": ok\n\n");
    for i in 1..=240u64 {
        let chunk = body.next().await.unwrap();
        assert_eq!(text(&chunk), ":\n\n");
        assert_eq!(start.elapsed(), Duration::from_secs(15 * i));
    }
    assert!(!stream.is_closed());
}

#[tokio::test(start_paused = true)]
async fn heartbeat_can_be_turned_off_and_retry_set() {
    let config = SseConfig::default()
        .heartbeat(None)
        .retry(Some(Duration::from_millis(2500)));
    let (stream, mut body) = SseStream::new(config, VirtualTimer);
    assert_eq!(text(&body.next().await.unwrap()), "retry: 2500\n\n");
    let next = tokio::time::timeout(Duration::from_secs(3600), body.next()).await;
    assert!(next.is_err(), "no heartbeat when turned off: {next:?}");
    stream.send_raw("x").unwrap();
    assert_eq!(text(&body.next().await.unwrap()), "data: x\n\n");
}

#[tokio::test(start_paused = true)]
async fn seed_api_writes_named_json_raw_and_comments_in_one_chunk() {
    let (stream, mut body) = SseStream::new(SseConfig::default(), VirtualTimer);
    body.next().await.unwrap();
    let writer = stream.clone(); // several tasks may write
    writer
        .send("update", &serde_json::json!({"id": 1, "status": "done"}))
        .unwrap();
    stream.send_raw("hello world").unwrap();
    stream.comment("heartbeat").unwrap();
    assert_eq!(
        text(&body.next().await.unwrap()),
        "event: update\ndata: {\"id\":1,\"status\":\"done\"}\n\ndata: hello world\n\n: heartbeat\n\n"
    );
    assert!(matches!(
        stream.send("bad\nname", &1),
        Err(SseError::Encode(_))
    ));
    assert!(
        !stream.is_closed(),
        "an encoding error does not close the stream"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_body_closes_the_stream_for_every_sender() {
    let (stream, body) = SseStream::new(SseConfig::default(), VirtualTimer);
    let waiter = tokio::spawn({
        let stream = stream.clone();
        async move { stream.closed().await }
    });
    drop(body); // the server noticed the client is gone
    waiter.await.unwrap();
    assert!(stream.is_closed());
    assert!(matches!(stream.send_raw("late"), Err(SseError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_cannot_keep_up_is_closed_with_lagged() {
    let (stream, mut body) = SseStream::new(SseConfig::default().buffer(4), VirtualTimer);
    body.next().await.unwrap();
    for i in 0..4 {
        stream.send_raw(&i.to_string()).unwrap();
    }
    assert!(matches!(stream.send_raw("5th"), Err(SseError::Lagged)));
    assert!(stream.is_closed());
    assert!(matches!(stream.send_raw("6th"), Err(SseError::Lagged)));
    assert_eq!(body.next().await, None, "a lagged stream ends");
}

#[tokio::test(start_paused = true)]
async fn close_ends_the_body_after_what_is_queued() {
    let (stream, mut body) = SseStream::new(SseConfig::default(), VirtualTimer);
    body.next().await.unwrap();
    stream.send_raw("last").unwrap();
    stream.close();
    assert_eq!(text(&body.next().await.unwrap()), "data: last\n\n");
    assert_eq!(body.next().await, None);
}
