//! `cargo xtask autobahn`: the Autobahn TestSuite's cases (through `kosoku`, fuzzingclient mode)
//! against every example's `/ws/echo`, compared with the committed expectation in
//! `autobahn/expected.json`, one for all adapters (see `autobahn/check.py`). `--bless` rewrites the expectation.
//!
//! The first example runs every case; the others run lean (`check.py --lean`: without the
//! compression cases of 32 KiB messages and up, which are most of the suite's time and exercise
//! the codec all four share). `--full` runs every case on every adapter.

use crate::examples::{self, Profile, EXAMPLES};
use crate::project_root;
use std::process::Command;

fn kosoku_ready() -> bool {
    Command::new("python3")
        .args(["-c", "import kosoku"])
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let bless = args.iter().any(|a| a == "--bless");
    let full = args.iter().any(|a| a == "--full");
    let release = args.iter().any(|a| a == "--release");
    let root = project_root();
    if !kosoku_ready() {
        eprintln!("kosoku missing: pip install -r autobahn/requirements.txt");
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(root.join("autobahn/requirements.txt"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !kosoku_ready() {
            return Err("autobahn: installing kosoku failed".into());
        }
    }
    let profile = if release {
        Profile::Release
    } else {
        Profile::Debug
    };
    examples::build(profile)?;
    let mut failed = Vec::new();
    for (index, example) in EXAMPLES.into_iter().enumerate() {
        let server = examples::start(example, profile, &[])?;
        let url = format!("ws://{}/ws/echo", server.addr);
        let mut check = Command::new("python3");
        check
            .arg(root.join("autobahn/check.py"))
            .args([example, &url]);
        if bless {
            check.arg("--bless");
        }
        if index > 0 && !full {
            check.arg("--lean");
        }
        if !check.status().is_ok_and(|s| s.success()) {
            failed.push(example);
        }
        drop(server);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("autobahn: failed on {}", failed.join(", ")))
    }
}
