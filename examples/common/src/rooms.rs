//! The chat's rooms (the contract is in the crate docs): what `/ws/chat` does with a message,
//! and which subscription `/events/chat` makes. A room is a hub topic of the same name.

use hub_core::{validate_topic, ConnectOptions, Hub, Inbound, Message};
use serde_json::{json, Value};

/// What a chat message asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request<'a> {
    Join(&'a str),
    Leave(&'a str),
    /// A chat message to the members of a room.
    Chat(&'a str),
    /// Anything else: to everyone, as the seed does.
    Everyone,
    /// A room request whose `room` is missing or not a string.
    NoRoom(&'a str),
}

fn parse(message: &Value) -> Request<'_> {
    let kind = message.get("type").and_then(Value::as_str);
    let room = message.get("room");
    match (kind, room) {
        (Some(kind @ ("join" | "leave")), room) => match room.and_then(Value::as_str) {
            Some(room) if kind == "join" => Request::Join(room),
            Some(room) => Request::Leave(room),
            None => Request::NoRoom(kind),
        },
        (Some("chat"), None) => Request::Everyone,
        (Some("chat"), Some(room)) => match room.as_str() {
            Some(room) => Request::Chat(room),
            None => Request::NoRoom("chat"),
        },
        _ => Request::Everyone,
    }
}

/// `{"type":"error","error":..}`.
fn error(text: impl std::fmt::Display) -> Message {
    Message::text(json!({"type": "error", "error": text.to_string()}).to_string())
}

/// `{"type":kind,"room":room}`.
fn done(kind: &str, room: &str) -> Message {
    Message::text(json!({"type": kind, "room": room}).to_string())
}

/// The chat hub's handler: join, leave and room messages as the contract says; every other
/// message (not JSON, another type, a chat without `room`) to everyone, unchanged.
pub fn on_chat_message(hub: &Hub, inbound: Inbound) {
    let parsed: Option<Value> = inbound
        .message
        .as_text()
        .and_then(|text| serde_json::from_str(text).ok());
    let request = parsed.as_ref().map_or(Request::Everyone, parse);
    let client = &inbound.client;
    let reply = match request {
        Request::Everyone => {
            hub.broadcast(inbound.message);
            return;
        }
        Request::NoRoom(kind) => error(format!("{kind}: \"room\" must be a string")),
        Request::Join(room) => match client.subscribe(room) {
            Ok(_) => done("joined", room),
            Err(e) => error(format!("join {room:?}: {e}")),
        },
        Request::Leave(room) => match validate_topic(room) {
            Err(e) => error(format!("leave {room:?}: {e}")),
            Ok(()) if client.unsubscribe(room) => done("left", room),
            Ok(()) => error(format!("leave {room:?}: not in this room")),
        },
        Request::Chat(room) => match validate_topic(room) {
            Err(e) => error(format!("chat to {room:?}: {e}")),
            Ok(()) => {
                hub.publish(room, inbound.message);
                return;
            }
        },
    };
    // a client too slow to take its own replies is evicted; nothing to do here
    let _ = client.send(reply);
}

/// The subscription `/events/chat` makes for a request's query: with `room=r`, the room `r`
/// (and the messages to everyone); without, everyone's messages only, as the seed.
///
/// # Errors
/// An invalid room name: the body of the 400 to answer with.
pub fn chat_events(query: Option<&str>) -> Result<ConnectOptions, String> {
    let room = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "room")
        .map(|(_, room)| room);
    match room {
        None => Ok(ConnectOptions::default()),
        Some(room) => ConnectOptions::default()
            .topics([&*room])
            .map_err(|e| format!("invalid room {room:?}: {e}\n")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_the_contract_says() {
        let cases = [
            (json!({"type": "join", "room": "r"}), Request::Join("r")),
            (json!({"type": "leave", "room": "r"}), Request::Leave("r")),
            (
                json!({"type": "chat", "room": "r", "text": "hi"}),
                Request::Chat("r"),
            ),
            (json!({"type": "chat", "text": "hi"}), Request::Everyone),
            (json!({"type": "other", "room": "r"}), Request::Everyone),
            (json!(["join", "r"]), Request::Everyone),
            (json!({"type": "join"}), Request::NoRoom("join")),
            (
                json!({"type": "leave", "room": 7}),
                Request::NoRoom("leave"),
            ),
            (
                json!({"type": "chat", "room": null}),
                Request::NoRoom("chat"),
            ),
        ];
        for (message, expected) in &cases {
            assert_eq!(&parse(message), expected, "{message}");
        }
    }

    #[test]
    fn the_events_query_names_a_valid_room_or_none() {
        let room = |q| chat_events(Some(q)).map(|o| o.initial_topics().join(","));
        assert_eq!(room("room=lobby").as_deref(), Ok("lobby"));
        assert_eq!(room("x=1&room=caf%C3%A9+bar").as_deref(), Ok("café bar"));
        assert_eq!(room("x=1").as_deref(), Ok(""));
        assert!(chat_events(None).unwrap().initial_topics().is_empty());
        for bad in ["room=", "room=a%0Ab", &format!("room={}", "x".repeat(257))] {
            let body = chat_events(Some(bad)).unwrap_err();
            assert!(body.starts_with("invalid room "), "{bad}: {body}");
        }
    }
}
