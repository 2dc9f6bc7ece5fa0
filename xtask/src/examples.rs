//! The example servers, built and started as child processes for the tasks that drive them
//! from outside (`mem`, `autobahn`, `bench`).

use crate::cargo;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Every adapter's example binary, actix on both upgrade paths.
pub(crate) const EXAMPLES: [&str; 4] = [
    "example-hyper",
    "example-warp",
    "example-actix",
    "example-actix-native",
];

/// The packages that build them.
const PACKAGES: [&str; 3] = ["example-hyper", "example-warp", "example-actix"];

/// Which cargo profile to build and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Builds every example.
pub(crate) fn build(profile: Profile) -> Result<(), String> {
    let mut build = cargo();
    build.args(["build", "--locked"]);
    if profile == Profile::Release {
        build.arg("--release");
    }
    for p in PACKAGES {
        build.args(["-p", p]);
    }
    if build.status().is_ok_and(|s| s.success()) {
        Ok(())
    } else {
        Err("building the examples failed".into())
    }
}

/// A running example; killed when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an example on an ephemeral port (`PORT=0`) with `env` added, and waits until it
/// logs the address it listens on.
pub(crate) fn start(
    example: &str,
    profile: Profile,
    env: &[(&str, &str)],
) -> Result<Running, String> {
    let binary = crate::bench_harness::target_dir()
        .join(profile.dir())
        .join(example);
    let log_filter = format!(
        "warn,{}=info,example_common=info",
        example.replace('-', "_")
    );
    let mut command = Command::new(&binary);
    command
        .env("RUST_LOG", log_filter)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    spawn(example, command)
}

/// Spawns `command` with `PORT=0` and waits until it logs `listening on http://ADDR/` (the
/// examples and the benchmark's baselines all do).
pub(crate) fn spawn(name: &str, mut command: Command) -> Result<Running, String> {
    let mut child = command
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {name}: {e}"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("no output pipes".into());
    };
    // The log goes to stdout or stderr depending on the program; read both.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for pipe in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        // keeps draining after the address is found, so the child never blocks on a full pipe
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut running = Running {
        child,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    for line in rx.iter() {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            running.addr = rest
                .trim_end_matches('/')
                .parse()
                .map_err(|e| format!("address in {line:?}: {e}"))?;
            // later lines are still read (and dropped) by the threads
            std::thread::spawn(move || for _ in rx {});
            return Ok(running);
        }
    }
    Err(format!("{name} exited before listening"))
}
