//! Redis names: the hub's channel and stream, and each topic's.
//!
//! A topic's channel is `{prefix}{name}:t:{<topic>}` and its stream
//! `{prefix}{name}:t:{<topic>}:history`, the topic escaped so that the braces enclose exactly
//! it: `%` becomes `%25`, `{` `%7B` and `}` `%7D` (percent-encoding, so two topics never share
//! a name). Redis Cluster hashes only what the first `{...}` holds, so a topic's channel and
//! stream fall in one hash slot: a script may take both, and sharded pub/sub can carry the
//! channel, without renaming anything. For that, the prefix and the hub's name must hold no
//! brace ([`check`]).

/// Checks that `prefix` and `name` hold no brace: one there would become the hash tag of
/// every topic's keys. `Err` with what is wrong.
pub(crate) fn check(prefix: &str, name: &str) -> Result<(), String> {
    for (what, value) in [("prefix", prefix), ("name", name)] {
        if value.contains(['{', '}']) {
            return Err(format!(
                "the {what} {value:?} holds a brace: topic keys put their hash tag in braces"
            ));
        }
    }
    Ok(())
}

/// `topic` with `%`, `{` and `}` percent-encoded.
pub(crate) fn escape(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len());
    for c in topic.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

/// The channel of `topic` for the hub whose channel is `hub_channel` (`{prefix}{name}`).
pub(crate) fn topic_channel(hub_channel: &str, topic: &str) -> String {
    format!("{hub_channel}:t:{{{}}}", escape(topic))
}

/// The stream of a topic whose channel is `channel`.
pub(crate) fn topic_stream(channel: &str) -> String {
    format!("{channel}:history")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_enclose_exactly_the_escaped_topic() {
        assert_eq!(topic_channel("hub:chat", "room"), "hub:chat:t:{room}");
        assert_eq!(
            topic_stream(&topic_channel("hub:chat", "a{b}")),
            "hub:chat:t:{a%7Bb%7D}:history"
        );
        assert_eq!(escape("100%{}"), "100%25%7B%7D");
        // distinct topics, distinct names: the escape is reversible
        assert_ne!(escape("%7B"), escape("{"));
        assert_eq!(escape("é:ü"), "é:ü");
        assert!(check("hub:", "chat").is_ok());
        assert!(check("hub{", "chat").is_err());
        assert!(check("hub:", "c}at").is_err());
    }
}
