//! `cargo xtask deny`: supply-chain checks with cargo-deny — one version of each protocol
//! crate, allowed licences, crates.io only (`deny.toml`).
//!
//! Advisories need the RustSec database, a git repository this machine cannot reach: they are
//! skipped here with a message, and checked before a release (README, release checklist).

use crate::cargo;

pub(crate) fn run() -> Result<(), String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let installed = cargo()
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let message = "cargo-deny not found (cargo install --locked cargo-deny)";
        if in_ci {
            return Err(format!("deny: {message}"));
        }
        eprintln!("\n!!! deny SKIPPED: {message}. CI runs it. !!!\n");
        return Ok(());
    }
    eprintln!(
        "deny: advisories are not checked here (the RustSec database cannot be fetched from \
         this machine); run `cargo deny check advisories` before a release"
    );
    let ok = cargo()
        .args(["deny", "--locked", "check", "bans", "licenses", "sources"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("deny: cargo deny check failed".into())
    }
}
