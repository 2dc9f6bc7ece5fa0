//! A naive hub, as users commonly write one with tokio-tungstenite: default buffers, a
//! `Mutex<HashMap>` of unbounded senders, one writer task per client that flushes every
//! message. No eviction: a slow client's queue grows without bound.
//!
//! Listens on `HOST:PORT` (127.0.0.1:0 by default) and logs `naive-hub listening on
//! http://ADDR/`. Any path upgrades; every message goes to every client, the sender included.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_tungstenite::tungstenite::Message;

type Clients = Arc<Mutex<HashMap<u64, UnboundedSender<Message>>>>;

async fn connection(stream: TcpStream, id: u64, clients: Clients) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = unbounded_channel();
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = source.next().await {
        if message.is_text() || message.is_binary() {
            for tx in clients.lock().unwrap_or_else(|e| e.into_inner()).values() {
                let _ = tx.send(message.clone());
            }
        }
    }
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    writer.abort();
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = hub_bench::listen("naive-hub").await?;
    let clients = Clients::default();
    let mut next = 0;
    loop {
        let (stream, _) = listener.accept().await?;
        next += 1;
        tokio::spawn(connection(stream, next, clients.clone()));
    }
}
