//! `loadgen topics` (S8): what subscriptions cost a server at rest. `--clients N` clients on
//! `--path` (a server that takes `subscribe a,b,..` commands and answers `ok CHANGED TOPICS`,
//! as `topic_hub`'s `/ws?commands`) each send one empty `subscribe` first, so every
//! connection has carried one command and one reply; then the server's memory and its CPU over
//! `--seconds` at rest are read. Then each client subscribes to `--per-client K` topics
//! (client `i` to topics `t{(i*K + k) mod N}`: N·K subscriptions over N topics, K subscribers
//! each) and the same two figures are read again. Both states are on the same connections of
//! the same process, so the difference is what the subscriptions hold.

use super::{cpu, open, rss, wire, Args, Error, Kind, Shared};
use serde_json::{json, Value};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// What the replies said, summed over every client.
#[derive(Default)]
struct Tally {
    /// Subscriptions the server reported as new.
    changed: Cell<u64>,
    /// The most topics the server reported having.
    topics: Cell<u64>,
    /// Replies other than `ok ..`.
    refused: Cell<u64>,
}

impl Tally {
    fn reply(&self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        let mut words = text.split(' ');
        let figures = match (words.next(), words.next(), words.next()) {
            (Some("ok"), Some(changed), Some(topics)) => {
                changed.parse::<u64>().ok().zip(topics.parse::<u64>().ok())
            }
            _ => None,
        };
        match figures {
            Some((changed, topics)) => {
                self.changed.set(self.changed.get() + changed);
                self.topics.set(self.topics.get().max(topics));
            }
            None => self.refused.set(self.refused.get() + 1),
        }
    }
}

/// One client: sends `commands[p - 1]` when the phase becomes `p`, reports every text reply,
/// answers pings; ends when the server closes or the phases end.
async fn client(
    stream: TcpStream,
    mut buf: Vec<u8>,
    commands: [String; 2],
    mut phase: watch::Receiver<usize>,
    shared: Rc<Shared>,
    tally: Rc<Tally>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut out = Vec::with_capacity(128);
    loop {
        let mut used = 0;
        out.clear();
        while let Some(f) = wire::parse(&buf[used..]) {
            let payload = &buf[used + f.start..used + f.end];
            match f.opcode {
                0x1 => {
                    tally.reply(payload);
                    shared.delivered(payload);
                }
                0x9 => wire::client_frame(&mut out, 0xA, payload),
                0x8 => return,
                _ => {}
            }
            used += f.end;
        }
        buf.drain(..used);
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            return;
        }
        buf.reserve(1024);
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                let p = *phase.borrow_and_update();
                if let Some(command) = p.checked_sub(1).and_then(|i| commands.get(i)) {
                    out.clear();
                    wire::client_frame(&mut out, 0x1, command.as_bytes());
                    if wr.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The server's memory (KiB) once settled, and its CPU share over `seconds` at rest.
async fn at_rest(a: &Args) -> (u64, f64) {
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    let memory = rss(a.pid);
    let (c0, t0) = (cpu(&a.pids), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    let share = (cpu(&a.pids) - c0) as f64 / t0.elapsed().as_nanos() as f64;
    (memory, share)
}

pub(super) async fn topics(a: Args) -> Result<Value, Error> {
    let n = a.clients.max(1);
    let shared = Rc::new(Shared::default());
    let tally = Rc::new(Tally::default());
    let (phase, phases) = watch::channel(0usize);
    for i in 0..n {
        let (stream, rest) = open(a.addr, Kind::Ws, &a.path, None).await?;
        let topics: Vec<String> = (0..a.per_client)
            .map(|k| format!("t{}", (i * a.per_client + k) % n))
            .collect();
        let commands = [
            "subscribe".to_string(),
            format!("subscribe {}", topics.join(",")),
        ];
        let task = client(
            stream,
            rest,
            commands,
            phases.clone(),
            shared.clone(),
            tally.clone(),
        );
        tokio::task::spawn_local(task);
    }
    let mut states = Vec::new();
    for p in 1..=2u64 {
        phase.send_replace(p as usize);
        if !shared.wait_for(p * n as u64, Duration::from_secs(60)).await {
            return Err(format!(
                "phase {p}: {} replies of {}",
                shared.delivered.get(),
                p * n as u64
            )
            .into());
        }
        states.push(at_rest(&a).await);
    }
    if tally.refused.get() > 0 {
        return Err(format!("{} commands refused", tally.refused.get()).into());
    }
    let subscriptions = tally.changed.get();
    let (without, with) = (states[0], states[1]);
    Ok(json!({
        "connections": n,
        "subscriptions": subscriptions,
        "topics": tally.topics.get(),
        "rss_without_kib": without.0,
        "rss_with_kib": with.0,
        "bytes_per_subscription":
            with.0.saturating_sub(without.0) as f64 * 1024.0 / subscriptions.max(1) as f64,
        "idle_seconds": a.seconds,
        "idle_cpu_share_without": without.1,
        "idle_cpu_share_with": with.1,
    }))
}
