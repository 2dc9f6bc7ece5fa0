//! A `redis-server` of a test's own, on a free port, that the test can kill, freeze and
//! restart; a proxy that holds back one command; a plain admin connection; and the cluster
//! tests' nodes. Without redis-server on PATH, [`RedisServer::start`] says so loudly and
//! returns `None`, except under `CI=true`, where it fails.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hub_redis::{BackplaneState, RedisBackplane};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::{Adapter, Server, GUARD};

/// A running (or killed) redis-server; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts redis-server on a free port, or `None` (after saying so) when it is missing.
    pub async fn start() -> Option<Self> {
        let present = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        if !present {
            assert!(
                std::env::var("CI").is_err(),
                "redis-server is required under CI (apt-get install redis-server)"
            );
            eprintln!("\n!!! SKIPPED: redis-server not found on PATH. CI runs these tests. !!!\n");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self { port, child: None };
        server.restart().await;
        Some(server)
    }

    /// Starts it (again) on its port and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // ready once it accepts connections
        tokio::time::timeout(GUARD, async {
            while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("redis-server did not come up");
    }

    /// Kills it (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT): it runs what it received meanwhile.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `redis-cli` (shipped with redis-server) against it; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The ids of the connections subscribed to a channel now.
    pub fn subscriber_ids(&self) -> Vec<u64> {
        self.cli(&["CLIENT", "LIST"])
            .lines()
            .filter(|line| {
                line.split(' ')
                    .any(|f| f.starts_with("sub=") && f != "sub=0")
            })
            .filter_map(|line| line.strip_prefix("id=")?.split(' ').next()?.parse().ok())
            .collect()
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A WebSocket client of `server`'s chat hub, and its handle there (to subscribe it to
/// topics from the application's side).
pub async fn join(server: &Server) -> (crate::Ws, hub_core::Client) {
    let hub = &server.app.chat;
    let before: Vec<hub_core::ClientId> = hub.clients().iter().map(hub_core::Client::id).collect();
    let ws = crate::connect(&server.url("/ws/chat")).await;
    let new = |h: &hub_core::Hub| h.clients().into_iter().find(|c| !before.contains(&c.id()));
    crate::wait_hub(hub, "the new client", |h| new(h).is_some()).await;
    (ws, new(hub).unwrap())
}

/// A node of the cluster tests: the example server on `adapter`, joined through `url`, `Up`.
pub async fn node_at(adapter: Adapter, url: &str) -> (Server, Arc<RedisBackplane>) {
    node_with(adapter, url, |c| c).await
}

/// A node joined to the Redis at `url`, its hub configured by `tweak`.
pub async fn node_with(
    adapter: Adapter,
    url: &str,
    tweak: impl FnOnce(hub_core::HubConfig) -> hub_core::HubConfig,
) -> (Server, Arc<RedisBackplane>) {
    let server = Server::with(adapter, crate::Settings::default(), tweak).await;
    let backplane = server.app.join_cluster(url).unwrap();
    tokio::time::timeout(GUARD, backplane.until(BackplaneState::Up))
        .await
        .expect("the backplane never came up");
    (server, backplane)
}

/// A node joined to `redis`.
pub async fn node(adapter: Adapter, redis: &RedisServer) -> (Server, Arc<RedisBackplane>) {
    node_at(adapter, &redis.url()).await
}

/// Waits until `published()` reaches `n`. The publisher counts a batch when Redis's reply is
/// in, just after the messages went out; no event marks it, so this checks every millisecond.
pub async fn until_published(what: &str, published: impl Fn() -> u64, n: u64) {
    tokio::time::timeout(GUARD, async {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        while published() < n {
            tick.tick().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} never published: {} of {n}", published()));
}

/// Two nodes, A (hyper) and B (warp), and the id of B's Redis connection.
pub async fn a_and_b(
    redis: &RedisServer,
) -> (
    (Server, Arc<RedisBackplane>),
    (Server, Arc<RedisBackplane>),
    u64,
) {
    a_and_b_with(redis, |c| c).await
}

/// [`a_and_b`], B's hub configured by `tweak_b`.
pub async fn a_and_b_with(
    redis: &RedisServer,
    tweak_b: impl FnOnce(hub_core::HubConfig) -> hub_core::HubConfig,
) -> (
    (Server, Arc<RedisBackplane>),
    (Server, Arc<RedisBackplane>),
    u64,
) {
    let a = node(Adapter::Hyper, redis).await;
    let before = redis.subscriber_ids();
    let b = node_with(Adapter::Warp, &redis.url(), tweak_b).await;
    let b_conn: Vec<u64> = redis
        .subscriber_ids()
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(b_conn.len(), 1, "B's connection: {b_conn:?}");
    (a, b, b_conn[0])
}

/// Kills only B's connection (Redis stays up) and holds B out (maxclients: everyone else)
/// while A broadcasts `n` messages and Redis takes them all; then lets B back in.
pub async fn while_b_is_cut_off(
    redis: &RedisServer,
    (a, a_backplane): &(Server, Arc<RedisBackplane>),
    b_backplane: &RedisBackplane,
    b_conn: u64,
    n: usize,
) {
    let hub = a.app.chat.clone();
    let broadcast = move || {
        for i in 0..n {
            hub.broadcast(format!("m{i}"));
        }
        n
    };
    while_b_is_cut_off_do(redis, a_backplane, b_backplane, b_conn, broadcast).await;
}

/// Kills only B's connection (Redis stays up) and holds B out (maxclients: everyone else)
/// while `publish` runs on A and Redis takes all it published (as many as it returns); then
/// lets B back in.
pub async fn while_b_is_cut_off_do(
    redis: &RedisServer,
    a_backplane: &RedisBackplane,
    b_backplane: &RedisBackplane,
    b_conn: u64,
    publish: impl FnOnce() -> usize,
) {
    let mut admin = Admin::connect(redis).await;
    // everyone connected now but B and redis-cli itself
    let clients = redis.cli(&["CLIENT", "LIST"]).lines().count() - 2;
    let limit = format!("CONFIG SET maxclients {clients}");
    assert_eq!(admin.cmd(&limit).await, "+OK");
    let kill = format!("CLIENT KILL ID {b_conn}");
    assert_eq!(admin.cmd(&kill).await, ":1");
    tokio::time::timeout(GUARD, b_backplane.until(BackplaneState::Down))
        .await
        .expect("B never noticed");
    let published = a_backplane.stats().published;
    let n = publish();
    let now = || a_backplane.stats().published;
    until_published("A's messages", now, published + n as u64).await;
    assert_eq!(admin.cmd("CONFIG SET maxclients 10000").await, "+OK");
}

/// Subscribers Redis counts on `channel` now.
pub fn numsub(redis: &RedisServer, channel: &str) -> u64 {
    let out = redis.cli(&["PUBSUB", "NUMSUB", channel]);
    out.lines()
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!("PUBSUB NUMSUB {channel}: {out:?}");
        })
}

/// Waits until Redis counts `n` subscribers on `channel`. A node subscribes from its own
/// task, and nothing tells the test when Redis has taken it: this asks every 5 ms.
pub async fn until_numsub(redis: &RedisServer, channel: &str, n: u64) {
    tokio::time::timeout(GUARD, async {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        while numsub(redis, channel) != n {
            tick.tick().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{channel}: {} subscribers, not {n}", numsub(redis, channel)));
}

/// A plain connection to Redis, for admin commands while other clients are refused.
#[derive(Debug)]
pub struct Admin(tokio::io::BufReader<tokio::net::TcpStream>);

impl Admin {
    pub async fn connect(redis: &RedisServer) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
            .await
            .unwrap();
        Self(tokio::io::BufReader::new(stream))
    }

    /// An inline command; the first line of its reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        let command = format!("{line}\r\n");
        self.0
            .get_mut()
            .write_all(command.as_bytes())
            .await
            .unwrap();
        self.line().await
    }

    /// A command of binary-safe arguments; the first line of its reply.
    pub async fn send(&mut self, args: &[&[u8]]) -> String {
        let mut command = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            command.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            command.extend_from_slice(arg);
            command.extend_from_slice(b"\r\n");
        }
        self.0.get_mut().write_all(&command).await.unwrap();
        self.line().await
    }

    /// The next line of a reply.
    pub async fn line(&mut self) -> String {
        let mut reply = String::new();
        self.0.read_line(&mut reply).await.unwrap();
        reply.trim_end().to_string()
    }
}

/// A TCP proxy to Redis that holds back the first chunk a client sends containing `marker`
/// for `delay` (once, over all connections): one reply comes late.
#[derive(Debug)]
pub struct DelayProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    pub async fn start(redis: &RedisServer, marker: &'static [u8], delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = redis.port;
        let done = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (mut client_rx, client_tx) = client.into_split();
                let (server_rx, mut server_tx) = server.into_split();
                let done = done.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_rx.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        let hit = chunk.windows(marker.len()).any(|w| w == marker);
                        if hit && !done.swap(true, Ordering::SeqCst) {
                            tokio::time::sleep(delay).await; // the fault injected
                        }
                        if server_tx.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let (mut rx, mut tx) = (server_rx, client_tx);
                    let _ = tokio::io::copy(&mut rx, &mut tx).await;
                });
            }
        });
        Self { port, task }
    }

    /// `redis://127.0.0.1:PORT/` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
