//! Helpers: a hub-hyper server with `/metrics`, real WebSocket clients, a scrape over HTTP,
//! and the independent parse of the exposition by Python's prometheus_client.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use futures_util::{SinkExt, StreamExt};
use hub_core::Hub;
use hyper::{body::Incoming, Request, Response};
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Every wait in a test is bounded by this.
pub const GUARD: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`GUARD`].
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits until `hub` satisfies `condition`, woken by the hub's changes and polled on each
/// yield (counters change without a registry change).
pub async fn until(what: &str, hub: &Hub, condition: impl Fn(&Hub) -> bool) {
    guard(what, async {
        while !condition(hub) {
            tokio::select! {
                () = hub.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    })
    .await;
}

/// Serves each hub at `/ws/<name>` and the registry at `/metrics`, on 127.0.0.1, port 0.
pub async fn serve(hubs: Vec<(&'static str, Hub)>, registry: Registry) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let registry = Arc::new(registry);
    let hubs = Arc::new(hubs);
    let service = move |req: Request<Incoming>| {
        let (hubs, registry) = (hubs.clone(), registry.clone());
        async move {
            let path = req.uri().path().to_string();
            let response = if path == "/metrics" {
                Response::builder()
                    .header(http::header::CONTENT_TYPE, hub_metrics::CONTENT_TYPE)
                    .body(hub_hyper::full(hub_metrics::encode(&registry).unwrap()))
                    .unwrap()
            } else {
                match hubs.iter().find(|(name, _)| path == format!("/ws/{name}")) {
                    Some((_, hub)) => hub_hyper::upgrade(req, hub),
                    None => Response::new(hub_hyper::full("not found")),
                }
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    };
    tokio::spawn(hub_hyper::serve(listener, service, std::future::pending()));
    addr
}

/// A WebSocket client of `/ws/<name>`.
pub async fn connect(addr: SocketAddr, name: &str) -> Ws {
    let url = format!("ws://{addr}/ws/{name}");
    guard("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .0
}

/// The next data message (pings are answered by tungstenite).
pub async fn next_data(ws: &mut Ws) -> Message {
    guard("a message", async {
        loop {
            match ws.next().await {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return m,
                Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
                Some(Ok(_)) => continue,
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
}

/// Reads until the server's close frame; returns its code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    guard("a close frame", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => panic!("close without a code"),
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
}

/// Sends `message` on `ws`.
pub async fn send(ws: &mut Ws, message: Message) {
    guard("send", ws.send(message)).await.unwrap();
}

/// A plain HTTP/1.1 GET on a fresh connection: (status line, headers lowercased, body).
pub async fn get(addr: SocketAddr, path: &str) -> (String, BTreeMap<String, String>, String) {
    guard("an HTTP answer", async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    })
    .await
}

/// What Python's prometheus_client parsed: family types, and samples by name and labels.
#[derive(Debug)]
pub struct Parsed {
    pub types: BTreeMap<String, String>,
    pub samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Parsed {
    /// The value of the sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    /// The samples of one hub.
    pub fn of_hub(&self, hub: &str) -> usize {
        self.samples
            .keys()
            .filter(|(_, labels)| labels.get("hub").map(String::as_str) == Some(hub))
            .count()
    }
}

/// Parses `text` with `e2e/metrics.py` (Python prometheus_client's strict OpenMetrics
/// parser: `pip install -r e2e/requirements.txt`); panics with its message if it refuses it.
pub async fn parse(text: &str) -> Parsed {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e/metrics.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is required (with e2e/requirements.txt installed)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = guard("the Python parser", child.wait_with_output())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "Python's prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let types = json["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let mut samples = BTreeMap::new();
    for sample in json["samples"].as_array().unwrap() {
        let name = sample[0].as_str().unwrap().to_string();
        let labels = sample[1]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let value = sample[2].as_f64().unwrap();
        let previous = samples.insert((name.clone(), labels), value);
        assert!(previous.is_none(), "duplicate sample {name}");
    }
    Parsed { types, samples }
}

/// Scrapes `/metrics` over HTTP, checks the answer, and parses it.
pub async fn scrape(addr: SocketAddr) -> Parsed {
    let (status, headers, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some(hub_metrics::CONTENT_TYPE)
    );
    parse(&body).await
}
