//! The SIGTERM drain of an example process, shared by every example's `tests/sigterm.rs`
//! (`#[path]`-included; std only, raw sockets): three WebSocket clients get 1001, an event
//! stream ends, `/healthz` answers 503 while draining, and the process exits 0 within the
//! shutdown timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every wait is bounded by this; above the hub's shutdown timeout (10 s).
const GUARD: Duration = Duration::from_secs(20);

/// The example process, killed when dropped (a failed assertion too).
struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` on a free port and waits for the address it logs.
fn start(binary: &str) -> (Process, SocketAddr, mpsc::Receiver<String>) {
    let mut command = Command::new(binary);
    command
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("REDIS_URL")
        .env_remove("RATE_LIMIT_PER_S")
        .env_remove("MAX_CONNECTIONS");
    let (child, rx) = spawn_logged(&mut command);
    let process = Process { child };
    loop {
        let line = rx
            .recv_timeout(GUARD)
            .expect("the example did not log its address");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            return (process, rest.trim_end_matches('/').parse().unwrap(), rx);
        }
    }
}

/// Spawns `command` with its stdout and stderr read to their end, line by line, into the
/// returned channel (which disconnects when the process has ended and closed both).
pub(crate) fn spawn_logged(command: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipes = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ];
    let (tx, rx) = mpsc::channel::<String>();
    for pipe in pipes {
        let tx = tx.clone();
        // keeps reading to the end, so the process never blocks on a full pipe
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, rx)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream
}

/// Reads a response head; its status and the head.
fn read_head(stream: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response head");
        assert_eq!(n, 1, "the connection ended in the head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    (status, head)
}

/// A client frame (masked, FIN) of `opcode` with `payload` (under 126 bytes).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x08];
    let len = u8::try_from(payload.len()).unwrap();
    assert!(len < 126);
    let mut out = vec![0x80 | opcode, 0x80 | len];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads one server frame: its opcode and payload.
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("a frame");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).unwrap();
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).unwrap();
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// The next text message, skipping pings.
fn next_text(stream: &mut TcpStream) -> String {
    loop {
        match read_frame(stream) {
            (0x1, payload) => return String::from_utf8(payload).unwrap(),
            (0x9, _) => {}
            (opcode, payload) => panic!("expected text, got opcode {opcode}: {payload:?}"),
        }
    }
}

/// A WebSocket client of `path`, upgraded.
fn websocket(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = connect(addr);
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (status, head) = read_head(&mut stream);
    assert_eq!(status, 101, "{path}: {head}");
    stream
}

/// Reads frames until the close; its code. Answers the close, as a client does.
fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = read_frame(stream);
        if opcode == 0x8 {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let _ = stream.write_all(&frame(0x8, &payload[..2]));
            return code;
        }
    }
}

/// Reads `stream` until `done` holds for what was read, or until it ends; what was read.
fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&seen) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(error) => panic!("reading failed ({error}) after {seen:?}"),
        }
    }
    seen
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What a health check whose request head is half sent when the drain starts gets.
#[allow(dead_code)] // each example's test uses one or both
pub(crate) enum InFlight {
    /// 503 (hyper's and actix-http's servers finish a request they have started reading).
    Draining,
    /// 503, or the connection closed unanswered: actix-web's `HttpServer` closes a
    /// connection whose request head is incomplete when it stops. Never a 200.
    DrainingOrClosed,
}

/// SIGTERM to `binary`'s process drains it: the test of every example.
pub(crate) fn drains(binary: &str, in_flight: InFlight) {
    let (mut process, addr, log) = start(binary);
    let mut chat = [websocket(addr, "/ws/chat"), websocket(addr, "/ws/chat")];
    let mut echo = websocket(addr, "/ws/echo");
    let mut events = connect(addr);
    let request =
        format!("GET /events/chat HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    events.write_all(request.as_bytes()).unwrap();
    let (status, head) = read_head(&mut events);
    assert_eq!(status, 200, "{head}");
    // every client is a member: a broadcast reaches both chat clients and the stream, an
    // echo comes back
    chat[0].write_all(&frame(0x1, b"before")).unwrap();
    for client in &mut chat {
        assert_eq!(next_text(client), "before");
    }
    let seen = read_until(&mut events, |seen| contains(seen, b"before"));
    assert!(
        contains(&seen, b"before"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    echo.write_all(&frame(0x1, b"ping?")).unwrap();
    assert_eq!(next_text(&mut echo), "ping?");
    // a health check whose head is half sent: in flight when the drain starts
    let mut health = connect(addr);
    health
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .unwrap();
    let mut healthy = connect(addr);
    healthy
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_head(&mut healthy).0, 200, "healthy while serving");

    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for client in chat.iter_mut().chain([&mut echo]) {
        assert_eq!(close_code(client), 1001, "going away");
    }
    // draining now: the health check in flight gets 503
    let _ = health.write_all(b"\r\n");
    let answer = read_until(&mut health, |seen| contains(seen, b"\r\n\r\n"));
    let answer = String::from_utf8_lossy(&answer);
    match in_flight {
        InFlight::Draining => assert!(answer.starts_with("HTTP/1.1 503 "), "draining: {answer}"),
        InFlight::DrainingOrClosed => assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503 "),
            "draining: {answer}"
        ),
    }
    // the event stream ends: read_until returns at its chunked body's last chunk or at the
    // connection's end (a stream still open fails on the read timeout)
    read_until(&mut events, |seen| contains(seen, b"0\r\n\r\n"));
    // the process exits 0 within the shutdown timeout: its output pipes close when it ends
    loop {
        let left = GUARD.saturating_sub(sent.elapsed());
        match log.recv_timeout(left) {
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the example kept running after SIGTERM")
            }
        }
    }
    let exit = process.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "exit code after SIGTERM: {exit}");
}
