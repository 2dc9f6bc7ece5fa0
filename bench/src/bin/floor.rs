//! The syscall floor: a WebSocket "hub" that does nothing but the unavoidable: one thread, no
//! queues, no keepalive, and for every inbound message one `write()` of one prebuilt frame per
//! connected socket. What a hub costs beyond this is its own overhead.
//!
//! `floor` listens on `HOST:PORT` (127.0.0.1:0 by default) and logs `floor listening on
//! http://ADDR/`, as the examples do. Any path upgrades.

use hub_bench::wire;
use std::cell::RefCell;
use std::rc::Rc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

type Registry = Rc<RefCell<Vec<(u64, Rc<TcpStream>)>>>;

/// Writes all of `frame`: one `write()` unless the socket pushes back.
async fn write_frame(stream: &TcpStream, frame: &[u8]) -> std::io::Result<()> {
    let mut at = 0;
    while at < frame.len() {
        match stream.try_write(&frame[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn connection(mut stream: TcpStream, id: u64, registry: Registry) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let end = loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        if let Some(end) = wire::head_end(&buf) {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    let stream = Rc::new(stream);
    write_frame(&stream, response.as_bytes()).await?;
    buf.drain(..end);
    registry.borrow_mut().push((id, stream.clone()));
    let mut out = Vec::new();
    'read: loop {
        let mut used = 0;
        while let Some(f) = wire::parse(&buf[used..]) {
            if let Some(key) = f.mask {
                wire::unmask(&mut buf[used + f.start..used + f.end], key);
            }
            match f.opcode {
                0x1 | 0x2 => {
                    out.clear();
                    wire::server_frame(&mut out, f.opcode, &buf[used + f.start..used + f.end]);
                    let clients: Vec<Rc<TcpStream>> =
                        registry.borrow().iter().map(|(_, s)| s.clone()).collect();
                    for client in clients {
                        let _ = write_frame(&client, &out).await;
                    }
                }
                0x8 => break 'read,
                _ => {}
            }
            used += f.end;
        }
        buf.drain(..used);
        // reading borrows the stream shared with the registry
        stream.readable().await?;
        let mut scratch = [0u8; 4096];
        match stream.try_read(&mut scratch) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    registry.borrow_mut().retain(|(i, _)| *i != id);
    Ok(())
}

fn main() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = hub_bench::listen("floor").await?;
        let registry = Registry::default();
        let mut next = 0;
        loop {
            let (stream, _) = listener.accept().await?;
            next += 1;
            tokio::task::spawn_local(connection(stream, next, registry.clone()));
        }
    })
}
