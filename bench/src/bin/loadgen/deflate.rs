//! permessage-deflate on the client side of a fanout (`--deflate`): the offer, the check that
//! the server agreed it, and the checks on what arrives: RSV1 on every data message to a
//! client that negotiated it (on none to one that did not), and each client's first message
//! inflated and compared with what the publisher sent. Later messages are counted, not
//! inflated: the load generator must stay cheaper than the server it measures.

use crate::Error;
use hub_bench::wire;
use serde_json::{json, Value};
use std::cell::Cell;

/// What the clients offer (RFC 7692 §7.1): permessage-deflate, accepting any window the
/// server picks for what they send (`client_max_window_bits` without a value).
pub(crate) const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A sample that inflates past this is an error (the messages are a few KiB).
const SAMPLE_LIMIT: usize = 1 << 20;

/// Whether the 101 response's head agreed permessage-deflate.
pub(crate) fn agreed(head: &[u8]) -> Result<(), Error> {
    let agreed = wire::header_value(head, "Sec-WebSocket-Extensions").is_some_and(|value| {
        value.split(',').any(|extension| {
            let name = extension.split(';').next().unwrap_or_default();
            name.trim().eq_ignore_ascii_case("permessage-deflate")
        })
    });
    if agreed {
        Ok(())
    } else {
        let head = String::from_utf8_lossy(head);
        Err(format!("the server did not agree permessage-deflate: {head}").into())
    }
}

/// What every connection of a run saw, summed.
#[derive(Default)]
pub(crate) struct Checks {
    /// What the publisher sends after the stamp, to rebuild what a sample should be.
    fill: wire::Fill,
    /// Data messages with RSV1 set.
    compressed: Cell<u64>,
    /// Data messages without.
    uncompressed: Cell<u64>,
    /// Samples that inflated to exactly what was sent.
    samples: Cell<u64>,
    /// Samples that did not inflate, or not to what was sent.
    bad_samples: Cell<u64>,
}

impl Checks {
    /// Checks for payloads of `fill`.
    pub(crate) fn new(fill: wire::Fill) -> Self {
        Checks {
            fill,
            ..Checks::default()
        }
    }

    /// Counts a data message from its first frame's RSV1 bit.
    pub(crate) fn message(&self, rsv1: bool) {
        let counter = if rsv1 {
            &self.compressed
        } else {
            &self.uncompressed
        };
        counter.set(counter.get() + 1);
    }

    /// Inflates one compressed message and checks it is what the publisher sent (the payload
    /// rebuilt from its stamp); returns it inflated, or `None` (counted) if it is not.
    pub(crate) fn sample(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let good = wire::inflate(payload, SAMPLE_LIMIT).filter(|message| {
            let seq = std::str::from_utf8(message.get(..10).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok());
            match (seq, wire::stamp(message)) {
                (Some(seq), Some(ns)) => *message == self.fill.payload(seq, ns, message.len()),
                _ => false,
            }
        });
        let counter = match good {
            Some(_) => &self.samples,
            None => &self.bad_samples,
        };
        counter.set(counter.get() + 1);
        good
    }

    /// Adds the counts to a fanout's figures; an error if a client that `negotiated` got a
    /// message uncompressed or a sample wrong, or did not get one to sample, or one that did
    /// not negotiate got a compressed message.
    pub(crate) fn verify(
        &self,
        figures: &mut Value,
        negotiated: bool,
        receivers: u64,
    ) -> Result<(), Error> {
        let (compressed, uncompressed) = (self.compressed.get(), self.uncompressed.get());
        let (samples, bad) = (self.samples.get(), self.bad_samples.get());
        if !negotiated {
            return match compressed {
                0 => Ok(()),
                n => Err(format!("{n} messages had RSV1 set without permessage-deflate").into()),
            };
        }
        figures["compressed_messages"] = json!(compressed);
        figures["samples_inflated"] = json!(samples);
        if uncompressed > 0 || bad > 0 || samples < receivers {
            return Err(format!(
                "permessage-deflate: {uncompressed} messages without RSV1 ({compressed} with); \
                 {samples} of {receivers} clients' first messages inflated to what was sent, \
                 {bad} did not"
            )
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `message` compressed as a permessage-deflate sender does (sync flush, tail cut).
    fn compressed(message: &[u8]) -> Vec<u8> {
        let mut deflater = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut out = Vec::with_capacity(message.len() + 64);
        deflater
            .compress_vec(message, &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn the_101_must_agree_the_extension() {
        let head = |ext: &str| format!("HTTP/1.1 101 Switching Protocols\r\n{ext}\r\n\r\n");
        let ok = head("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover");
        assert!(agreed(ok.as_bytes()).is_ok());
        assert!(
            agreed(head("Sec-WebSocket-Extensions: x-webkit-deflate-frame").as_bytes()).is_err()
        );
        assert!(agreed(head("Upgrade: websocket").as_bytes()).is_err());
    }

    #[test]
    fn samples_must_inflate_to_what_was_sent_and_every_message_be_compressed() {
        let checks = Checks::new(wire::Fill::Json);
        let sent = wire::json_payload(9, 0, 1024);
        assert_eq!(checks.sample(&compressed(&sent)), Some(sent.clone()));
        let mut other = sent.clone();
        other[100] ^= 1;
        assert_eq!(checks.sample(&compressed(&other)), None);
        assert_eq!(checks.sample(b"not deflate at all"), None);
        checks.message(true);
        let mut figures = json!({});
        // one good sample of two receivers, two bad
        assert!(checks.verify(&mut figures, true, 2).is_err());
        let checks = Checks::new(wire::Fill::Json);
        checks.sample(&compressed(&sent));
        checks.message(true);
        assert!(checks.verify(&mut figures, true, 1).is_ok());
        assert_eq!(figures["samples_inflated"], 1);
        checks.message(false);
        assert!(checks.verify(&mut figures, true, 1).is_err());
        // without the extension, RSV1 is an error and plain messages are not
        let plain = Checks::default();
        plain.message(false);
        assert!(plain.verify(&mut figures, false, 1).is_ok());
        plain.message(true);
        assert!(plain.verify(&mut figures, false, 1).is_err());
    }
}
