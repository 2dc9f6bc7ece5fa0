//! The load generator: one thread, raw TCP, frames parsed by hand. It drives one server
//! (`--addr`) through one scenario and prints one JSON object of figures on stdout. The
//! server's CPU time and memory are read from /proc (`--pid`).
//!
//! ```text
//! loadgen fanout    --addr A --pid P --clients N --size S --batch B --seconds T [--sse PATH] [--stalled]
//!                   [--fill filler|json] [--deflate]
//! loadgen latency   --addr A --pid P --clients N --size S --rate R --seconds T [--sse PATH]
//! loadgen idle      --addr A --pid P --clients N [--size 8192] [--settle SECONDS]
//! loadgen keepalive --addr A --pid P --clients N --seconds T
//! loadgen topics    --addr A --pid P --clients N --per-client K --seconds T [--settle SECONDS]
//! ```
//!
//! `--pub-addr B` (fanout, latency) makes the publisher one extra WebSocket on the server at
//! `B` (another node of a cluster); `--pid P1,P2,..` sums the CPU time of several processes
//! (the nodes and Redis) and reads memory from the first.
//!
//! `--path P` (fanout, latency) is the WebSocket path of the clients (default `/ws/chat`);
//! `--idle-clients N --idle-path Q` (fanout) connects N more clients on `Q` first, which stay
//! idle and must receive nothing (reported as `idle_deliveries`): a publish to a topic among
//! many connected clients. `topics` (S8) is in `topics.rs`.
//!
//! `--fill json` (fanout, latency) makes the payloads JSON like a ticker's (`wire::json_payload`)
//! rather than `x` repeated. `--deflate` makes the clients offer permessage-deflate; each must
//! see it agreed in the 101 and then RSV1 on every data message, and each inflates its first
//! message and checks it against what was sent (`deflate.rs`). The publisher sends plain
//! frames. Every fanout reports the data-frame bytes received per delivery.
//!
//! Every scenario uses `/ws/chat` semantics: a message from one client reaches every client,
//! the sender included. The publisher is connection 0; with `--sse`, the N receivers are
//! event streams and the publisher is one extra WebSocket.

use hub_bench::hist::Histogram;
use hub_bench::{procfs, wire};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;

mod deflate;
mod topics;

type Error = Box<dyn std::error::Error>;

/// What every receiver reports into.
#[derive(Default)]
struct Shared {
    delivered: Cell<u64>,
    /// `notify` fires when `delivered` reaches this.
    target: Cell<u64>,
    notify: Notify,
    latency: Option<RefCell<Histogram>>,
    pings: Cell<u64>,
    closes: RefCell<HashMap<u16, u64>>,
    epoch: Option<Instant>,
    /// Bytes of data frames received, headers included.
    wire_bytes: Cell<u64>,
    /// What the permessage-deflate clients saw (`deflate.rs`).
    deflate: deflate::Checks,
}

impl Shared {
    fn delivered(&self, payload: &[u8]) {
        let n = self.delivered.get() + 1;
        self.delivered.set(n);
        if let (Some(hist), Some(epoch), Some(sent)) =
            (&self.latency, self.epoch, wire::stamp(payload))
        {
            let now = epoch.elapsed().as_nanos() as u64;
            hist.borrow_mut().record(now.saturating_sub(sent) / 1000);
        }
        if n == self.target.get() {
            self.notify.notify_one();
        }
    }

    async fn wait_for(&self, target: u64, limit: Duration) -> bool {
        self.target.set(target);
        let deadline = tokio::time::Instant::now() + limit;
        while self.delivered.get() < target {
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ws,
    /// A WebSocket that offers permessage-deflate, and requires it agreed.
    WsDeflate,
    Sse,
}

struct Args {
    scenario: String,
    addr: SocketAddr,
    pid: u32,
    /// Every process whose CPU time counts (`pid` first).
    pids: Vec<u32>,
    pub_addr: Option<SocketAddr>,
    clients: usize,
    size: usize,
    batch: usize,
    rate: f64,
    seconds: f64,
    sse: Option<String>,
    /// The WebSocket path of the clients.
    path: String,
    /// Extra clients connected first, idle (fanout).
    idle_clients: usize,
    idle_path: String,
    /// Topics per client (topics).
    per_client: usize,
    stalled: bool,
    /// What follows the stamp in a payload.
    fill: wire::Fill,
    /// The clients offer permessage-deflate.
    deflate: bool,
    /// Seconds to let memory settle before reading it (idle).
    settle: f64,
}

fn args() -> Result<Args, Error> {
    let mut it = std::env::args().skip(1);
    let scenario = it
        .next()
        .ok_or("usage: loadgen SCENARIO --addr A --pid P ...")?;
    let mut kv: HashMap<String, String> = HashMap::new();
    let (mut stalled, mut deflate) = (false, false);
    while let Some(k) = it.next() {
        if k == "--stalled" || k == "--deflate" {
            stalled |= k == "--stalled";
            deflate |= k == "--deflate";
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        kv.insert(k.trim_start_matches("--").to_string(), v);
    }
    let get = |k: &str, d: &str| kv.get(k).cloned().unwrap_or_else(|| d.to_string());
    let pids = get("pid", "0")
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(Args {
        scenario,
        addr: get("addr", "127.0.0.1:8080").parse()?,
        pid: pids.first().copied().unwrap_or(0),
        pids,
        pub_addr: kv.get("pub-addr").map(|a| a.parse()).transpose()?,
        clients: get("clients", "1000").parse()?,
        size: get("size", "64").parse()?,
        batch: get("batch", "1").parse()?,
        rate: get("rate", "50").parse()?,
        seconds: get("seconds", "5").parse()?,
        sse: kv.get("sse").cloned(),
        path: get("path", "/ws/chat"),
        idle_clients: get("idle-clients", "0").parse()?,
        idle_path: get("idle-path", "/ws/chat"),
        per_client: get("per-client", "10").parse()?,
        stalled,
        fill: wire::Fill::parse(&get("fill", "filler")).ok_or("--fill is filler or json")?,
        deflate,
        settle: get("settle", "2").parse()?,
    })
}

/// Connects and completes the handshake; returns the stream and any bytes read past the head.
async fn open(
    addr: SocketAddr,
    kind: Kind,
    path: &str,
    rcvbuf: Option<u32>,
) -> Result<(TcpStream, Vec<u8>), Error> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    let mut stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let host = addr.to_string();
    let request = match kind {
        Kind::Ws => wire::upgrade_request(&host, path),
        Kind::WsDeflate => wire::upgrade_request_offering(&host, path, Some(deflate::OFFER)),
        Kind::Sse => wire::sse_request(&host, path),
    };
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err("closed during the handshake".into());
        }
        if let Some(end) = wire::head_end(&buf) {
            break end;
        }
    };
    let want: &[u8] = if kind == Kind::Sse {
        b"HTTP/1.1 200"
    } else {
        b"HTTP/1.1 101"
    };
    if !buf.starts_with(want) {
        return Err(format!("refused: {}", String::from_utf8_lossy(&buf[..end])).into());
    }
    if kind == Kind::WsDeflate {
        deflate::agreed(&buf[..end])?;
    }
    Ok((stream, buf.split_off(end)))
}

/// Reads one connection until it ends, reporting every complete message; answers pings when it
/// holds the write half. (A write half must stay alive: dropping it shuts the socket's write
/// side, and the server takes that as the client leaving.)
async fn receive(
    mut rd: OwnedReadHalf,
    mut pong: Option<OwnedWriteHalf>,
    answer_pings: bool,
    kind: Kind,
    mut buf: Vec<u8>,
    shared: Rc<Shared>,
) {
    let mut message_start: Vec<u8> = Vec::new();
    let mut sampled = false;
    loop {
        let mut used = 0;
        match kind {
            Kind::Sse => used = wire::sse_events(&buf, |data| shared.delivered(data)),
            Kind::Ws | Kind::WsDeflate => {
                while let Some(f) = wire::parse(&buf[used..]) {
                    let payload = &buf[used + f.start..used + f.end];
                    if f.opcode <= 0x2 {
                        shared
                            .wire_bytes
                            .set(shared.wire_bytes.get() + f.end as u64);
                    }
                    if f.opcode == 0x1 || f.opcode == 0x2 {
                        shared.deflate.message(f.rsv1);
                    }
                    match f.opcode {
                        0x1 | 0x2 if f.fin && f.rsv1 && !sampled => {
                            sampled = true;
                            match shared.deflate.sample(payload) {
                                Some(message) => shared.delivered(&message),
                                None => shared.delivered(payload),
                            }
                        }
                        0x1 | 0x2 if f.fin => shared.delivered(payload),
                        0x1 | 0x2 => {
                            message_start.clear();
                            message_start
                                .extend_from_slice(&payload[..payload.len().min(wire::STAMP_LEN)]);
                        }
                        0x0 if f.fin => shared.delivered(&message_start),
                        0x9 => {
                            shared.pings.set(shared.pings.get() + 1);
                            if let Some(w) = pong.as_mut().filter(|_| answer_pings) {
                                let mut out = Vec::with_capacity(16);
                                wire::client_frame(&mut out, 0xA, payload);
                                if w.write_all(&out).await.is_err() {
                                    return;
                                }
                            }
                        }
                        0x8 => {
                            let code = payload
                                .get(..2)
                                .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                            *shared.closes.borrow_mut().entry(code).or_default() += 1;
                            return;
                        }
                        _ => {}
                    }
                    used += f.end;
                }
            }
        }
        buf.drain(..used);
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The connections of a run: receivers spawned, the publisher's write half kept.
struct Fleet {
    publisher: Option<OwnedWriteHalf>,
    receivers: u64,
}

async fn connect_fleet(a: &Args, shared: &Rc<Shared>, answer_pings: bool) -> Result<Fleet, Error> {
    let mut publisher = None;
    let mut receivers = 0;
    let ws = if a.deflate { Kind::WsDeflate } else { Kind::Ws };
    let (kind, path) = match &a.sse {
        Some(p) => (Kind::Sse, p.as_str()),
        None => (ws, a.path.as_str()),
    };
    if kind == Kind::Sse || a.pub_addr.is_some() {
        // the publisher is an extra WebSocket, and receives its own messages too
        let at = a.pub_addr.unwrap_or(a.addr);
        let (s, rest) = open(at, ws, &a.path, None).await?;
        let (rd, wr) = s.into_split();
        tokio::task::spawn_local(receive(rd, None, false, ws, rest, shared.clone()));
        publisher = Some(wr);
        receivers += 1;
    }
    for i in 0..a.clients {
        let (s, rest) = open(a.addr, kind, path, None).await?;
        let (rd, wr) = s.into_split();
        if i == 0 && publisher.is_none() {
            tokio::task::spawn_local(receive(rd, None, false, kind, rest, shared.clone()));
            publisher = Some(wr);
        } else {
            let task = receive(rd, Some(wr), answer_pings, kind, rest, shared.clone());
            tokio::task::spawn_local(task);
        }
        receivers += 1;
    }
    Ok(Fleet {
        publisher,
        receivers,
    })
}

/// Connects `--idle-clients` clients on `--idle-path`, which answer pings and report what
/// they receive into the returned counter.
async fn connect_bystanders(a: &Args) -> Result<Rc<Shared>, Error> {
    let shared = Rc::new(Shared::default());
    for _ in 0..a.idle_clients {
        let (s, rest) = open(a.addr, Kind::Ws, &a.idle_path, None).await?;
        let (rd, wr) = s.into_split();
        let task = receive(rd, Some(wr), true, Kind::Ws, rest, shared.clone());
        tokio::task::spawn_local(task);
    }
    Ok(shared)
}

fn cpu(pids: &[u32]) -> u64 {
    pids.iter().map(|p| procfs::cpu_ns(*p).unwrap_or(0)).sum()
}

fn rss(pid: u32) -> u64 {
    procfs::rss_kib(pid).unwrap_or(0)
}

async fn fanout(a: Args) -> Result<Value, Error> {
    let bystanders = connect_bystanders(&a).await?;
    let shared = Rc::new(Shared {
        deflate: deflate::Checks::new(a.fill),
        ..Shared::default()
    });
    let Fleet {
        publisher,
        receivers,
    } = connect_fleet(&a, &shared, false).await?;
    let mut publisher = publisher.ok_or("no publisher")?;
    // a reader that never reads, with a small receive buffer
    let stalled = match a.stalled {
        true => Some(open(a.addr, Kind::Ws, "/ws/chat", Some(4096)).await?),
        false => None,
    };
    let rss_before = rss(a.pid);
    let mut seq = 0u64;
    let mut round = async |shared: &Shared, publisher: &mut OwnedWriteHalf| -> Result<(), Error> {
        let mut out = Vec::with_capacity(a.batch * (a.size + 14));
        for _ in 0..a.batch {
            seq += 1;
            wire::client_frame(&mut out, 0x1, &a.fill.payload(seq, 0, a.size));
        }
        let target = shared.delivered.get() + receivers * a.batch as u64;
        publisher.write_all(&out).await?;
        if !shared.wait_for(target, Duration::from_secs(30)).await {
            return Err(format!(
                "deliveries stalled at {} of {target}",
                shared.delivered.get()
            )
            .into());
        }
        Ok(())
    };
    // warm up, then measure
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs_f64((a.seconds / 5.0).min(1.0)) {
        round(&shared, &mut publisher).await?;
    }
    let (d0, c0, t0) = (shared.delivered.get(), cpu(&a.pids), Instant::now());
    let b0 = shared.wire_bytes.get();
    let mut rounds = 0u64;
    while t0.elapsed() < Duration::from_secs_f64(a.seconds) {
        round(&shared, &mut publisher).await?;
        rounds += 1;
    }
    let (deliveries, cpu_ns, wall) = (shared.delivered.get() - d0, cpu(&a.pids) - c0, t0.elapsed());
    let mut result = json!({
        "receivers": receivers,
        "rounds": rounds,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries as f64 / wall.as_secs_f64(),
        "cpu_us_per_delivery": cpu_ns as f64 / 1000.0 / deliveries.max(1) as f64,
        "server_cpu_share": cpu_ns as f64 / wall.as_nanos() as f64,
        "rss_growth_kib": rss(a.pid).saturating_sub(rss_before),
        "wire_bytes_per_delivery": (shared.wire_bytes.get() - b0) as f64 / deliveries.max(1) as f64,
    });
    shared.deflate.verify(&mut result, a.deflate, receivers)?;
    if a.idle_clients > 0 {
        result["idle_clients"] = json!(a.idle_clients);
        result["idle_deliveries"] = json!(bystanders.delivered.get());
    }
    if let Some((stream, rest)) = stalled {
        let (messages, bytes, close) = drain_stalled(stream, rest).await;
        result["stalled_messages"] = json!(messages);
        result["stalled_bytes"] = json!(bytes);
        result["stalled_close_code"] = json!(close);
    }
    Ok(result)
}

/// Reads what the stalled reader was sent: data messages and bytes, and the close code if the
/// server closed it (evicted).
async fn drain_stalled(mut s: TcpStream, mut buf: Vec<u8>) -> (u64, u64, Option<u16>) {
    let (mut messages, mut bytes) = (0u64, 0u64);
    loop {
        let mut used = 0;
        while let Some(f) = wire::parse(&buf[used..]) {
            match f.opcode {
                0x8 => {
                    let p = &buf[used + f.start..used + f.end];
                    return (
                        messages,
                        bytes,
                        p.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])),
                    );
                }
                0x0..=0x2 => {
                    bytes += (f.end - f.start) as u64;
                    messages += u64::from(f.fin);
                }
                _ => {}
            }
            used += f.end;
        }
        buf.drain(..used);
        buf.reserve(64 * 1024);
        match tokio::time::timeout(Duration::from_secs(2), s.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return (messages, bytes, None),
        }
    }
}

async fn latency(a: Args) -> Result<Value, Error> {
    let epoch = Instant::now();
    let shared = Rc::new(Shared {
        latency: Some(RefCell::new(Histogram::default())),
        epoch: Some(epoch),
        deflate: deflate::Checks::new(a.fill),
        ..Shared::default()
    });
    let Fleet {
        publisher,
        receivers,
    } = connect_fleet(&a, &shared, false).await?;
    let mut publisher = publisher.ok_or("no publisher")?;
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let count = (a.seconds * a.rate) as u64;
    let c0 = cpu(&a.pids);
    let start = tokio::time::Instant::now();
    let mut out = Vec::new();
    for seq in 0..count {
        // open loop: the stamp is the intended send time, so a stalled server cannot hide
        // the wait it causes (no coordinated omission)
        let intended = start + interval * seq as u32;
        tokio::time::sleep_until(intended).await;
        let ns = (intended.into_std() - epoch).as_nanos() as u64;
        out.clear();
        wire::client_frame(&mut out, 0x1, &a.fill.payload(seq, ns, a.size));
        publisher.write_all(&out).await?;
    }
    let complete = shared
        .wait_for(count * receivers, Duration::from_secs(30))
        .await;
    let cpu_ns = cpu(&a.pids) - c0;
    let hist = shared.latency.as_ref().ok_or("no histogram")?.borrow();
    Ok(json!({
        "receivers": receivers,
        "messages": count,
        "deliveries": shared.delivered.get(),
        "complete": complete,
        "p50_us": hist.quantile(0.50),
        "p99_us": hist.quantile(0.99),
        "p999_us": hist.quantile(0.999),
        "max_us": hist.max(),
        "cpu_us_per_delivery": cpu_ns as f64 / 1000.0 / shared.delivered.get().max(1) as f64,
    }))
}

async fn idle(a: Args) -> Result<Value, Error> {
    let settle = Duration::from_secs_f64(a.settle);
    // warm up allocator arenas and worker threads
    let mut warm = Vec::new();
    for _ in 0..200 {
        warm.push(open(a.addr, Kind::Ws, "/ws/chat", None).await?);
    }
    drop(warm);
    tokio::time::sleep(settle).await;
    let before = rss(a.pid);
    let shared = Rc::new(Shared::default());
    let Fleet {
        publisher,
        receivers,
    } = connect_fleet(&a, &shared, true).await?;
    let mut publisher = publisher.ok_or("no publisher")?;
    tokio::time::sleep(settle).await;
    let idle = rss(a.pid);
    let mut out = Vec::new();
    wire::client_frame(&mut out, 0x2, &wire::payload(0, 0, a.size));
    publisher.write_all(&out).await?;
    if !shared.wait_for(receivers, Duration::from_secs(60)).await {
        return Err("not every client received the message".into());
    }
    tokio::time::sleep(settle).await;
    let after = rss(a.pid);
    let per = |kib: u64| kib.saturating_sub(before) as f64 * 1024.0 / receivers as f64 / 1000.0;
    Ok(json!({
        "connections": receivers,
        "idle_kb_per_conn": per(idle),
        "after_message_kb_per_conn": per(after),
        "message_bytes": a.size,
    }))
}

async fn keepalive(a: Args) -> Result<Value, Error> {
    let shared = Rc::new(Shared::default());
    let Fleet { receivers, .. } = connect_fleet(&a, &shared, true).await?;
    let (p0, c0, t0) = (shared.pings.get(), cpu(&a.pids), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    let (pings, cpu_ns) = (shared.pings.get() - p0, cpu(&a.pids) - c0);
    let closes: u64 = shared.closes.borrow().values().sum();
    Ok(json!({
        "connections": receivers,
        "seconds": t0.elapsed().as_secs_f64(),
        "pings": pings,
        "cpu_us_per_ping": cpu_ns as f64 / 1000.0 / pings.max(1) as f64,
        "server_cpu_share": cpu_ns as f64 / t0.elapsed().as_nanos() as f64,
        "closed_by_server": closes,
    }))
}

fn main() -> Result<(), Error> {
    let a = args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async move {
        match a.scenario.as_str() {
            "fanout" => fanout(a).await,
            "latency" => latency(a).await,
            "idle" => idle(a).await,
            "keepalive" => keepalive(a).await,
            "topics" => topics::topics(a).await,
            other => Err(format!("unknown scenario {other}").into()),
        }
    })?;
    #[allow(clippy::print_stdout)] // the figures are this program's output
    {
        println!("{result}");
    }
    Ok(())
}
