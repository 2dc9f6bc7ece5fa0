//! An SSE client for tests: hyper's HTTP/1 client, parsed by eventsource-stream (an
//! independent WHATWG parser), so the server is not checked by its own encoder's logic.

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

type Events = Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// A connected event stream. Dropping it closes the TCP connection.
pub struct SseClient {
    pub status: u16,
    pub headers: http::HeaderMap,
    events: Option<Events>,
    conn: JoinHandle<()>,
}

impl std::fmt::Debug for SseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient")
            .field("status", &self.status)
            .finish()
    }
}

impl SseClient {
    /// `GET path` with `headers` (plus `Host`).
    pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        Self::request(addr, "GET", path, headers).await
    }

    /// A request with any method.
    pub async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = crate::guard(
            "the response head",
            sender.send_request(req.body(Empty::<bytes::Bytes>::new()).unwrap()),
        )
        .await
        .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let events = response
            .into_body()
            .into_data_stream()
            .eventsource()
            .map(|r| r.map_err(|e| e.to_string()));
        Self {
            status,
            headers,
            events: Some(Box::pin(events)),
            conn,
        }
    }

    /// The next event (comments are not events).
    pub async fn next(&mut self) -> Event {
        let events = self.events.as_mut().unwrap();
        crate::guard("an SSE event", events.next())
            .await
            .expect("the event stream ended")
            .unwrap()
    }

    /// Whether the stream ends (the server closed it) within the guard.
    pub async fn ended(&mut self) -> bool {
        let events = self.events.as_mut().unwrap();
        crate::guard("the event stream to end", async {
            loop {
                match events.next().await {
                    None | Some(Err(_)) => return true,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
    }
}

impl Drop for SseClient {
    fn drop(&mut self) {
        self.events = None;
        self.conn.abort();
    }
}

/// The `Accept` header of an event stream request.
pub const ACCEPT: (&str, &str) = ("accept", "text/event-stream");

/// `(id, data)` of the next `n` events of `client`, each a `message` with an id.
pub async fn events(client: &mut SseClient, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let e = client.next().await;
        assert_eq!(e.event, "message", "{e:?}");
        out.push((e.id.parse().unwrap(), e.data));
    }
    out
}
