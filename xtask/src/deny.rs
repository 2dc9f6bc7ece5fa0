//! `cargo xtask deny`: supply-chain checks with cargo-deny — one version of each protocol
//! crate, allowed licences, crates.io only (`deny.toml`).
//!
//! Advisories need the RustSec database, a git repository this machine cannot reach: they are
//! skipped here with a message, and checked before a release (README, release checklist).

use crate::cargo;

pub(crate) fn run() -> Result<(), String> {
    let installed = cargo()
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return crate::skip(
            "deny",
            "cargo-deny not found (cargo install --locked cargo-deny)",
        );
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
