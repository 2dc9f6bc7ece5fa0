//! S1-deflate: S1's fan-out with 1 KiB JSON-like messages (`wire::json_payload`: trades with
//! the same keys, symbols, prices, a few words of chat), to clients that negotiate
//! permessage-deflate and to clients that do not, on the same process of each of our servers,
//! interleaved (plain, then deflate, per trial and batch). The publisher sends plain frames;
//! the hub compresses once per broadcast. The load generator checks the 101 agreed the
//! extension, that every data message has RSV1, and that each client's first message inflates
//! to what was sent. The report compares server CPU and data-frame bytes per delivery.

use crate::bench_harness::Plan;
use crate::bench_report::cell;
use serde_json::{json, Value};
use std::fmt::Write;

/// The scenario's name in the records.
pub(crate) const SCENARIO: &str = "S1-deflate";

/// The message size.
const SIZE: u64 = 1024;

/// Server CPU per delivery, deflate against plain: at most this.
pub(crate) const CPU_TARGET: f64 = 1.3;

/// Bytes on the wire per delivery, deflate against plain: at most this (%).
pub(crate) const WIRE_TARGET: f64 = 40.0;

/// The load generator's params of every run, in order: per trial, per batch, plain then
/// deflate.
pub(crate) fn runs(plan: &Plan) -> Vec<Value> {
    let mut runs = Vec::new();
    for trial in 0..plan.deflate_trials {
        for batch in [1, 16] {
            for deflate in [false, true] {
                runs.push(
                    json!({"clients": plan.clients, "size": SIZE, "batch": batch,
                    "seconds": plan.seconds, "fill": "json", "deflate": deflate, "trial": trial}),
                );
            }
        }
    }
    runs
}

/// The median of `key` over `server`'s runs with `batch` and `deflate`.
fn median(results: &Value, server: &str, batch: u64, deflate: bool, key: &str) -> Option<f64> {
    let mut values: Vec<f64> = crate::bench_report::records(results)
        .iter()
        .filter(|r| {
            r["server"] == server
                && r["scenario"] == SCENARIO
                && r["params"]["batch"] == batch
                && r["params"]["deflate"] == deflate
        })
        .filter_map(|r| r["figures"][key].as_f64())
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Deflate against plain for `key` (medians), for `batch`.
fn ratio(results: &Value, server: &str, batch: u64, key: &str) -> Option<f64> {
    let plain = median(results, server, batch, false, key)?;
    let deflate = median(results, server, batch, true, key)?;
    (plain > 0.0).then(|| deflate / plain)
}

/// Server CPU per delivery, deflate against plain, the worse of the two batch sizes.
pub(crate) fn cpu_ratio(results: &Value, server: &str) -> Option<f64> {
    [1, 16]
        .into_iter()
        .filter_map(|b| ratio(results, server, b, "cpu_us_per_delivery"))
        .reduce(f64::max)
}

/// Bytes on the wire per delivery, deflate against plain (%), the worse of the two batches.
pub(crate) fn wire_percent(results: &Value, server: &str) -> Option<f64> {
    [1, 16]
        .into_iter()
        .filter_map(|b| ratio(results, server, b, "wire_bytes_per_delivery"))
        .reduce(f64::max)
        .map(|r| r * 100.0)
}

/// A figure against its limit, in bold when over it.
fn against(v: Option<f64>, limit: f64, digits: usize) -> String {
    match v {
        Some(v) if v > limit => format!("**{v:.digits$}**"),
        v => cell(v, digits),
    }
}

/// The S1-deflate table: per server and batch, CPU and bytes per delivery of both runs and the
/// ratios against their targets.
pub(crate) fn markdown(results: &Value) -> String {
    let records = crate::bench_report::records(results);
    let mut servers: Vec<&str> = Vec::new();
    for r in records.iter().filter(|r| r["scenario"] == SCENARIO) {
        let name = r["server"].as_str().unwrap_or_default();
        if !servers.contains(&name) {
            servers.push(name);
        }
    }
    let Some(first) = records.iter().find(|r| r["scenario"] == SCENARIO) else {
        return String::new();
    };
    let trials = records
        .iter()
        .filter(|r| r["scenario"] == SCENARIO && r["server"] == first["server"])
        .count()
        / 4;
    let mut md = format!(
        "\n### S1-deflate: permessage-deflate against plain (1 KiB JSON-like messages, {} \
         clients; medians of {trials} trial{}; **bold**: over the target)\n\n",
        first["params"]["clients"],
        if trials == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        md,
        "| server | batch | µs/delivery plain | deflate | CPU ratio (≤ {CPU_TARGET}×) \
         | bytes/delivery plain | deflate | wire ratio (≤ {WIRE_TARGET} %) |\n\
         |---|---|---|---|---|---|---|---|"
    );
    for server in servers {
        for batch in [1u64, 16] {
            let cpu = |deflate| median(results, server, batch, deflate, "cpu_us_per_delivery");
            let wire = |deflate| median(results, server, batch, deflate, "wire_bytes_per_delivery");
            let cpu_ratio = ratio(results, server, batch, "cpu_us_per_delivery");
            let wire_ratio = ratio(results, server, batch, "wire_bytes_per_delivery");
            let _ = writeln!(
                md,
                "| {server} | {batch} | {} | {} | {} | {} | {} | {} % |",
                cell(cpu(false), 2),
                cell(cpu(true), 2),
                against(cpu_ratio, CPU_TARGET, 2),
                cell(wire(false), 0),
                cell(wire(true), 0),
                against(wire_ratio.map(|r| r * 100.0), WIRE_TARGET, 1),
            );
        }
    }
    md
}
