//! S8's server: one hub on hub-hyper whose clients pick, at connect, what their messages do,
//! so that a broadcast and a topic publish are measured on the same binary in the same run.
//!
//! `topic_hub` listens on `HOST:PORT` (127.0.0.1:0 by default), logs `topic_hub listening on
//! http://ADDR/` as the examples do, and upgrades `GET /ws` with these query parameters (no
//! percent-decoding: the harness's names need none):
//!
//! - `topics=a,b,..`: subscribed to these topics at connect (`ConnectOptions::topics`);
//! - `publish=T`: every message it sends is published to topic `T` (`Hub::publish`);
//! - `commands`: every message it sends is a command, `subscribe a,b,..` or
//!   `unsubscribe a,b,..` (`Client::subscribe` / `unsubscribe`), answered with the text
//!   `ok CHANGED TOPICS`: how many of the named topics changed, and how many topics the hub
//!   has; a list with an invalid name is refused whole, answered `error REASON` (as is a
//!   subscribe over the per-client limit, after the topics before it);
//! - none of the two: every message it sends is broadcast to every client (the chat's S1).

use http::{Request, Response, StatusCode};
use hub_core::{ConnectOptions, Hub, Inbound, Message};
use hub_hyper::{Body, WsConfig};
use std::convert::Infallible;

/// What a client's messages do, chosen by its query at connect.
enum Role {
    Broadcast,
    Publish(String),
    Commands,
}

/// The client's role and initial topics from the request's query.
fn options(query: &str) -> Result<ConnectOptions, String> {
    let mut role = Role::Broadcast;
    let mut topics: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("topics", list) => topics.extend(list.split(',').filter(|t| !t.is_empty())),
            ("publish", topic) => role = Role::Publish(topic.to_string()),
            ("commands", _) => role = Role::Commands,
            (key, _) => return Err(format!("unknown parameter {key:?}")),
        }
    }
    let mut options = ConnectOptions::websocket()
        .topics(topics)
        .map_err(|e| e.to_string())?;
    options.data = Some(Box::new(role));
    Ok(options)
}

/// Runs one command of a `commands` client; returns the reply.
fn command(hub: &Hub, inbound: &Inbound) -> String {
    let text = inbound.message.as_text().unwrap_or_default();
    let (verb, list) = text.split_once(' ').unwrap_or((text, ""));
    let topics = list.split(',').filter(|t| !t.is_empty());
    // names are checked before any change; only the per-client limit can stop a list halfway
    if let Some(error) = topics
        .clone()
        .find_map(|t| hub_core::validate_topic(t).err())
    {
        return format!("error {error}");
    }
    let mut changed = 0;
    for topic in topics {
        match verb {
            "subscribe" => match inbound.client.subscribe(topic) {
                Ok(hub_core::Subscribed::Joined) => changed += 1,
                Ok(_) => {}
                Err(error) => return format!("error {error}"),
            },
            "unsubscribe" => changed += usize::from(inbound.client.unsubscribe(topic)),
            other => return format!("error unknown command {other:?}"),
        }
    }
    format!("ok {changed} {}", hub.topic_count())
}

fn on_message(hub: &Hub, inbound: Inbound) {
    match inbound.client.data::<Role>() {
        Some(Role::Publish(topic)) => {
            hub.publish(topic, inbound.message);
        }
        Some(Role::Commands) => {
            let reply = command(hub, &inbound);
            // a reply that does not fit the client's queue evicts it, as any send does
            let _ = inbound.client.send(Message::text(reply));
        }
        Some(Role::Broadcast) | None => {
            hub.broadcast(inbound.message);
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(hub_hyper::full(text));
    *response.status_mut() = status;
    response
}

fn route<B>(hub: &Hub, req: Request<B>) -> Response<Body> {
    if req.uri().path() != "/ws" {
        return plain(StatusCode::NOT_FOUND, "not found\n".into());
    }
    match options(req.uri().query().unwrap_or_default()) {
        Ok(options) => hub_hyper::upgrade_with(req, hub, options, WsConfig::default()),
        Err(error) => plain(StatusCode::BAD_REQUEST, format!("{error}\n")),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = hub_bench::listen("topic_hub").await?;
    let hub = Hub::new();
    hub.on_message(on_message);
    let service = move |req: Request<hyper::body::Incoming>| {
        let response = route(&hub, req);
        async move { Ok::<_, Infallible>(response) }
    };
    hub_hyper::serve(listener, service, std::future::pending()).await;
    Ok(())
}
