//! The example binary's settings, as an operator sets them. `ALLOWED_ORIGINS`: `*` allows every
//! origin, an empty value is unset (the default, which allows every origin), and `*` inside a
//! list stops the server at start with exit code 2; never a silent lock-out. A ping interval
//! not below the pong wait (which would drop every healthy idle client) stops it the same way,
//! as does a `RATE_LIMIT_PER_S` or `MAX_CONNECTIONS` that is not a positive integer.
//! A password in `REDIS_URL` never reaches the log.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "../../common/tests/support/sigterm.rs"]
#[allow(dead_code)] // the process helpers only
mod sigterm;

const GUARD: Duration = Duration::from_secs(20);

/// The example, killed when dropped.
struct Example {
    child: Child,
    addr: SocketAddr,
    /// What it logged up to its address.
    log: String,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(allowed_origins: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_example-hyper"));
    command
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("ALLOWED_ORIGINS", allowed_origins)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts the example and waits for the address it logs.
fn start(allowed_origins: &str) -> Example {
    start_command(command(allowed_origins))
}

/// Starts the example as `command` says and waits for the address it logs.
fn start_command(mut command: Command) -> Example {
    let (child, rx) = sigterm::spawn_logged(&mut command);
    // from here on, dropping `example` (a failed wait too) kills the process
    let mut example = Example {
        child,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        log: String::new(),
    };
    loop {
        let line = rx
            .recv_timeout(GUARD)
            .expect("the example did not log its address");
        example.log.push_str(&line);
        example.log.push('\n');
        if let Some(rest) = line.split("listening on http://").nth(1) {
            example.addr = rest.trim_end_matches('/').parse().unwrap();
            return example;
        }
    }
}

/// The status of an upgrade of `/ws/chat` from `origin`.
fn upgrade_status(addr: SocketAddr, origin: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    let head = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
}

#[test]
fn a_star_allows_every_origin() {
    let example = start("*");
    let own = format!("http://{}", example.addr);
    assert_eq!(
        upgrade_status(example.addr, &own),
        101,
        "the page's own origin"
    );
    assert_eq!(
        upgrade_status(example.addr, "https://elsewhere.example"),
        101
    );
}

#[test]
fn an_empty_value_is_unset() {
    for value in ["", " , "] {
        let example = start(value);
        let own = format!("http://{}", example.addr);
        assert_eq!(
            upgrade_status(example.addr, &own),
            101,
            "{value:?}: own origin"
        );
        assert_eq!(
            upgrade_status(example.addr, "https://elsewhere.example"),
            101,
            "{value:?}"
        );
    }
}

#[test]
fn a_list_still_refuses_other_origins() {
    let example = start("https://app.example");
    assert_eq!(upgrade_status(example.addr, "https://app.example"), 101);
    assert_eq!(
        upgrade_status(example.addr, "https://elsewhere.example"),
        403
    );
}

/// Runs `command` until it exits (it must, within the guard); its exit code and stderr.
fn exits(mut command: Command, what: &str) -> (Option<i32>, String) {
    let mut child = command.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    // the pipe closes when the process ends
    let Ok(stderr) = rx.recv_timeout(GUARD) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the example kept running with {what}");
    };
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn a_star_inside_a_list_stops_the_server_with_exit_code_2() {
    let (code, stderr) = exits(command("*, https://app.example"), "'*' inside a list");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ALLOWED_ORIGINS"), "{stderr}");
}

#[test]
fn a_ping_interval_not_below_the_pong_wait_stops_the_server_with_exit_code_2() {
    for (ping, pong) in [("3000", "2000"), ("2000", "2000")] {
        let mut bad = command("");
        bad.env("PING_INTERVAL_MS", ping).env("PONG_WAIT_MS", pong);
        let (code, stderr) = exits(bad, "a ping interval not below the pong wait");
        assert_eq!(code, Some(2), "{ping}/{pong}: {stderr}");
        assert!(
            stderr.contains("PING_INTERVAL_MS") && stderr.contains("PONG_WAIT_MS"),
            "{stderr}"
        );
    }
}

#[test]
fn a_ping_interval_below_the_pong_wait_serves() {
    let mut good = command("");
    good.env("PING_INTERVAL_MS", "1500")
        .env("PONG_WAIT_MS", "2000");
    let example = start_command(good);
    assert_eq!(upgrade_status(example.addr, "https://any.example"), 101);
}

#[test]
fn the_redis_password_never_reaches_the_log() {
    // a port nothing listens on: the example warns that Redis is not reachable, then serves
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "pw-s3cr3t-do-not-log";
    let mut command = command("");
    command
        .env(
            "REDIS_URL",
            format!("redis://user:{secret}@127.0.0.1:{port}/0"),
        )
        .env("RUST_LOG", "debug");
    let example = start_command(command);
    let log = &example.log;
    assert!(log.contains("not reachable yet"), "{log}");
    assert!(log.contains("user:***@127.0.0.1"), "{log}");
    assert!(!log.contains(secret), "the password is in the log:\n{log}");
}

#[test]
fn a_rate_limit_or_connection_limit_that_is_not_a_positive_integer_stops_the_server_with_exit_code_2(
) {
    for (name, value) in [
        ("RATE_LIMIT_PER_S", "abc"),
        ("RATE_LIMIT_PER_S", "0"),
        ("RATE_LIMIT_PER_S", "-5"),
        ("RATE_LIMIT_PER_S", "1.5"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "many"),
    ] {
        let mut bad = command("");
        bad.env(name, value);
        let (code, stderr) = exits(bad, &format!("{name}={value}"));
        assert_eq!(code, Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(value), "{stderr}");
    }
}

#[test]
fn limits_that_parse_serve() {
    let mut good = command("");
    good.env("RATE_LIMIT_PER_S", "100")
        .env("MAX_CONNECTIONS", "1");
    let example = start_command(good);
    assert_eq!(upgrade_status(example.addr, "https://any.example"), 101);
}
