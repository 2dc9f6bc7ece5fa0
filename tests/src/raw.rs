//! A deliberately low-level WebSocket client: hand-written handshake and frames, so tests can
//! send what a well-behaved library never would (unmasked frames, bad UTF-8, no pongs).

use base64::Engine as _;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate).
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Sends a raw HTTP request and returns the status code, the response head and the stream.
pub async fn request(addr: SocketAddr, head: &str) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, text) = read_head(&mut stream).await;
    (status, text, stream)
}

/// Reads one response head (byte by byte, so nothing after it is consumed); returns the status
/// code and the head's text.
pub async fn read_head(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = crate::guard("a response head", stream.read(&mut byte))
            .await
            .unwrap();
        assert!(
            n > 0,
            "connection closed during the response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The value of header `name` (any case) in a response head's text.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads until `done(bytes so far)` holds or the connection ends; returns what was read.
pub async fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    crate::guard("response bytes", async {
        while !done(&buf) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    buf
}

/// An upgrade request for `path` with extra header lines (each ending in `\r\n`).
pub fn upgrade_head(addr: SocketAddr, path: &str, extra: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef");
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{extra}\r\n"
    )
}

/// A raw WebSocket connection after a successful upgrade.
#[derive(Debug)]
pub struct RawWs {
    pub stream: TcpStream,
}

impl RawWs {
    /// Upgrades on `path`; panics unless the answer is 101.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let (status, head, stream) = request(addr, &upgrade_head(addr, path, "")).await;
        assert_eq!(status, 101, "upgrade refused: {head}");
        Self { stream }
    }

    /// Writes one frame; `mask` chooses whether the payload is masked as RFC 6455 requires.
    pub async fn send(&mut self, fin: bool, opcode: u8, payload: &[u8], mask: bool) {
        let out = frame(fin, opcode, payload, mask);
        self.stream.write_all(&out).await.unwrap();
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one frame; `None` at EOF or on a reset.
    pub async fn recv(&mut self) -> Option<Frame> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).await.ok()?;
        let fin = head[0] & 0x80 != 0;
        let rsv1 = head[0] & 0x40 != 0;
        let opcode = head[0] & 0x0f;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).await.ok()?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).await.ok()?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        assert_eq!(head[1] & 0x80, 0, "server frames must not be masked");
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            fin,
            rsv1,
            opcode,
            payload,
        })
    }

    /// Reads frames until a close frame; returns its code. Panics on EOF first.
    pub async fn expect_close(&mut self) -> u16 {
        crate::guard("a close frame", async {
            loop {
                match self.recv().await {
                    Some(f) if f.opcode == 0x8 => return f.close_code().unwrap_or(1005),
                    Some(_) => continue,
                    None => panic!("connection ended without a close frame"),
                }
            }
        })
        .await
    }

    /// Reads until EOF (or reset), discarding frames.
    pub async fn expect_eof(&mut self) {
        crate::guard("the connection to end", async {
            while self.recv().await.is_some() {}
        })
        .await;
    }
}

/// Encodes one client frame; `mask` chooses whether the payload is masked as RFC 6455 requires.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}
