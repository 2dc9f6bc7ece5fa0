//! A `redis-server` of a test's own, on a free port, that the test can kill and restart.
//! Without redis-server on PATH, [`RedisServer::start`] says so loudly and returns `None`,
//! except under `CI=true`, where it fails.

use std::process::{Child, Command, Stdio};

use crate::GUARD;

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
            .filter(|line| line.split(' ').any(|f| f == "sub=1"))
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
