//! `cargo xtask mem [N]`: server memory per idle WebSocket connection, for each example.
//!
//! Each example runs as its own release process; this process opens N raw WebSocket
//! connections to its `/ws/chat` (one process holds at most ~20,000 descriptors here), and the
//! server's resident set is read from /proc before and after. Then every client receives one
//! 8 KB message and goes idle again (buffers that grow to the largest frame show up here).

use crate::examples::{self, Profile, EXAMPLES};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::sleep;
use std::time::Duration;

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

fn handshake(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let req = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("closed during handshake".into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("refused: {}", String::from_utf8_lossy(&head)));
    }
    Ok(s)
}

/// Reads one server frame and returns its payload length.
fn read_frame(s: &mut TcpStream) -> Result<usize, String> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).map_err(|e| e.to_string())?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            usize::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).map_err(|e| e.to_string())?;
            usize::try_from(u64::from_be_bytes(b)).map_err(|e| e.to_string())?
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).map_err(|e| e.to_string())?;
    Ok(len)
}

/// A masked binary frame of `len` bytes.
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x82, 0x80 | 126];
    f.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // zero mask: payload as is
    f.extend(std::iter::repeat_n(b'x', len));
    f
}

struct Row {
    example: &'static str,
    idle: f64,
    after: f64,
}

fn measure(example: &'static str, n: usize) -> Result<Row, String> {
    let server = examples::start(example, Profile::Release, &[])?;
    let (pid, addr) = (server.child.id(), server.addr);
    let result = (|| {
        // warm up allocator arenas and worker threads
        let warm: Vec<TcpStream> = (0..200)
            .map(|_| handshake(addr))
            .collect::<Result<_, _>>()?;
        drop(warm);
        sleep(Duration::from_millis(500));
        let before = rss_kib(pid)?;
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(handshake(addr)?);
        }
        sleep(Duration::from_secs(2));
        let idle = rss_kib(pid)?;
        // one 8 KB message to everyone: client 0 publishes on the chat, all read it
        clients[0]
            .write_all(&frame(8192))
            .map_err(|e| e.to_string())?;
        for c in &mut clients {
            c.set_read_timeout(Some(Duration::from_secs(30))).ok();
            if read_frame(c)? != 8192 {
                return Err("unexpected frame".into());
            }
        }
        sleep(Duration::from_secs(2));
        let after = rss_kib(pid)?;
        let per = |kib: u64| (kib.saturating_sub(before) as f64) * 1024.0 / n as f64 / 1000.0;
        Ok(Row {
            example,
            idle: per(idle),
            after: per(after),
        })
    })();
    drop(server);
    result
}

#[allow(clippy::print_stdout)] // the table is this task's output
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    examples::build(Profile::Release)?;
    let only: Vec<&String> = args.iter().skip(1).collect();
    let mut rows = Vec::new();
    for example in EXAMPLES {
        if !only.is_empty() && !only.iter().any(|o| o.as_str() == example) {
            continue;
        }
        eprintln!("measuring {example} with {n} idle connections...");
        rows.push(measure(example, n)?);
    }
    let mut out = String::from(
        "| server | kB per idle connection | after one 8 KB message |\n|---|---|---|\n",
    );
    for r in &rows {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} |\n",
            r.example, r.idle, r.after
        ));
    }
    print!("{out}");
    Ok(())
}
