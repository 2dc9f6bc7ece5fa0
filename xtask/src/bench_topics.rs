//! S8, topics: on `topic_hub` (`bench/src/bin/topic_hub.rs`: hub-hyper and hub-core's public
//! topic API, nothing of the examples), with the same load generator as the other scenarios.
//!
//! 1. Publish against broadcast: server CPU per delivery of a publish to a topic that 1,000
//!    of 10,000 connected clients hold, against a broadcast to 1,000 clients (S1's shape) on
//!    the same binary, in interleaved pairs on fresh processes (the report takes the median
//!    of the pairs' ratios).
//! 2. Memory and rest: 10,000 clients, then 10 topics each (100,000 subscriptions over
//!    10,000 topics) on the same connections: RSS growth per subscription, and the server's
//!    CPU over 10 s at rest with and without them.
//! 3. Subscribe + unsubscribe pairs a second on one core, in process (`topic_churn`).
//!
//! `cargo xtask bench s8` refreshes only S8.

use crate::bench_harness::{json_output, loadgen_at, pinned, start, target_dir, Plan, Server};
use crate::bench_report::cell;
use serde_json::{json, Value};
use std::fmt::Write;

const SERVER: Server = Server::TopicHub;

fn record(records: &mut Vec<Value>, part: &str, mut params: Value, figures: Value) {
    params["part"] = json!(part);
    eprintln!("  {} S8 {params}: {figures}", SERVER.name());
    records.push(
        json!({"server": SERVER.name(), "ours": true, "scenario": "S8",
        "params": params, "figures": figures}),
    );
}

/// Measures the three parts.
pub(crate) fn run(plan: &Plan, records: &mut Vec<Value>) -> Result<(), String> {
    let subscribed = plan.clients;
    let connected = plan.idle.max(subscribed);
    for trial in 0..plan.slow_trials {
        for part in ["broadcast", "publish"] {
            let running = start(SERVER, &[])?;
            let pid = running.child.id().to_string();
            for batch in [1, 16] {
                let mut params = json!({"clients": subscribed, "size": 64, "batch": batch,
                    "seconds": plan.seconds, "path": "/ws"});
                if part == "publish" {
                    params["path"] = json!("/ws?topics=T&publish=T");
                    params["idle-clients"] = json!(connected - subscribed);
                    params["idle-path"] = json!("/ws");
                }
                let figures = loadgen_at(running.addr, &pid, "fanout", &params)?;
                if figures["idle_deliveries"].as_u64().unwrap_or(0) > 0 {
                    return Err(format!(
                        "S8: a publish reached clients outside T: {figures}"
                    ));
                }
                params["trial"] = json!(trial);
                record(records, part, params, figures);
            }
        }
    }
    let running = start(SERVER, &[])?;
    let params = json!({"clients": connected, "per-client": 10, "path": "/ws?commands",
        "seconds": plan.topic_rest_seconds, "settle": plan.settle});
    let figures = loadgen_at(
        running.addr,
        &running.child.id().to_string(),
        "topics",
        &params,
    )?;
    let want = connected as u64 * 10;
    if figures["subscriptions"].as_u64() != Some(want) {
        return Err(format!("S8: {want} subscriptions expected: {figures}"));
    }
    record(records, "memory", params, figures);
    drop(running);
    let params = json!({"clients": connected, "topics": connected, "seconds": plan.seconds});
    let mut churn = pinned(0, target_dir().join("release/topic_churn"));
    for (key, value) in params.as_object().into_iter().flatten() {
        churn.arg(format!("--{key}")).arg(value.to_string());
    }
    let figures = json_output(churn, "topic_churn")?;
    record(records, "churn", params, figures);
    Ok(())
}

fn s8<'r>(results: &'r Value, part: &str) -> Vec<&'r Value> {
    crate::bench_report::records(results)
        .iter()
        .filter(|r| r["scenario"] == "S8" && r["params"]["part"] == part)
        .collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The median over the trials of `key` for `part` at `batch`.
fn per_batch(results: &Value, part: &str, batch: u64, key: &str) -> Option<f64> {
    median(
        s8(results, part)
            .iter()
            .filter(|r| r["params"]["batch"] == batch)
            .filter_map(|r| r["figures"][key].as_f64())
            .collect(),
    )
}

/// The median over the trials of publish ÷ broadcast CPU per delivery at `batch`.
fn ratio(results: &Value, batch: u64) -> Option<f64> {
    let cpu = |part: &str| -> Vec<(u64, f64)> {
        s8(results, part)
            .iter()
            .filter(|r| r["params"]["batch"] == batch)
            .filter_map(|r| {
                Some((
                    r["params"]["trial"].as_u64()?,
                    r["figures"]["cpu_us_per_delivery"].as_f64()?,
                ))
            })
            .collect()
    };
    let broadcast = cpu("broadcast");
    median(
        cpu("publish")
            .into_iter()
            .filter_map(|(trial, p)| {
                let (_, b) = broadcast.iter().find(|(t, _)| *t == trial)?;
                (*b > 0.0).then(|| p / b)
            })
            .collect(),
    )
}

/// The plot's rows for S8: CPU per delivery (batch 16) of the broadcast and the publish.
pub(crate) fn plot_rows(results: &Value) -> Vec<(String, f64, bool)> {
    [
        ("broadcast", "topic_hub broadcast (S8)"),
        ("publish", "topic_hub publish (S8)"),
    ]
    .into_iter()
    .filter_map(|(part, label)| {
        Some((
            label.to_string(),
            per_batch(results, part, 16, "cpu_us_per_delivery")?,
            true,
        ))
    })
    .collect()
}

/// The S8 tables and their targets; empty without S8 records.
pub(crate) fn markdown(results: &Value) -> String {
    let (Some(first), memory, churn) = (
        s8(results, "publish").first().copied(),
        s8(results, "memory").first().map(|r| &r["figures"]),
        s8(results, "churn").first().map(|r| &r["figures"]),
    ) else {
        return String::new();
    };
    let p = &first["params"];
    let subscribed = p["clients"].as_u64().unwrap_or(0);
    let connected = subscribed + p["idle-clients"].as_u64().unwrap_or(0);
    let trials = s8(results, "publish").len() / 2;
    let mut md = format!(
        "\n### S8 topics ({}: hub-hyper and hub-core's topics; 64 B; medians over {trials} \
         interleaved trials, each part on a fresh process)\n\n\
         | delivery | clients connected | µs/delivery B=1 | µs/delivery B=16 | deliveries/s B=16 |\
         \n|---|---|---|---|---|\n",
        first["server"].as_str().unwrap_or("?"),
    );
    for (part, what, clients) in [
        (
            "broadcast",
            format!("broadcast to {subscribed} (S1's shape)"),
            subscribed,
        ),
        (
            "publish",
            format!("publish to a topic of {subscribed}"),
            connected,
        ),
    ] {
        let _ = writeln!(
            md,
            "| {what} | {clients} | {} | {} | {} |",
            cell(per_batch(results, part, 1, "cpu_us_per_delivery"), 2),
            cell(per_batch(results, part, 16, "cpu_us_per_delivery"), 2),
            cell(per_batch(results, part, 16, "deliveries_per_s"), 0),
        );
    }
    let _ = writeln!(
        md,
        "| publish ÷ broadcast | | {}× | {}× | |",
        cell(ratio(results, 1), 2),
        cell(ratio(results, 16), 2)
    );
    let get = |f: Option<&Value>, key: &str| f.and_then(|f| f[key].as_f64());
    let mib = |key: &str| get(memory, key).map(|kib| kib / 1024.0);
    let seconds = get(memory, "idle_seconds");
    // CPU at rest as milliseconds over the window
    let rest = |key: &str| Some(get(memory, key)? * seconds? * 1000.0);
    let _ = writeln!(
        md,
        "\n| connections | subscriptions | topics | RSS without (MiB) | RSS with (MiB) | bytes per \
         subscription | CPU at rest, ms over {} s: without | with |\n|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} | {} | {} |",
        memory.map_or(Value::Null, |m| m["idle_seconds"].clone()),
        cell(get(memory, "connections"), 0),
        cell(get(memory, "subscriptions"), 0),
        cell(get(memory, "topics"), 0),
        cell(mib("rss_without_kib"), 1),
        cell(mib("rss_with_kib"), 1),
        cell(get(memory, "bytes_per_subscription"), 1),
        cell(rest("idle_cpu_share_without"), 3),
        cell(rest("idle_cpu_share_with"), 3),
    );
    let _ = writeln!(
        md,
        "\nSubscribe + unsubscribe on one core, in process ({} clients holding 10 topics each): \
         {} pairs/s on a topic with other subscribers, {} pairs/s on a topic nobody else holds \
         (each pair creates and removes it).",
        cell(get(churn, "clients"), 0),
        cell(get(churn, "existing_pairs_per_s"), 0),
        cell(get(churn, "new_pairs_per_s"), 0),
    );
    let worse_ratio = [ratio(results, 1), ratio(results, 16)]
        .into_iter()
        .flatten()
        .reduce(f64::max);
    let slower_churn = [
        get(churn, "existing_pairs_per_s"),
        get(churn, "new_pairs_per_s"),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::min);
    type Row<'a> = (&'a str, &'a str, Option<f64>, usize, fn(f64) -> bool);
    let rows: [Row<'_>; 3] = [
        (
            "publish ÷ broadcast per delivery (worse batch)",
            "≤ 1.1 ×",
            worse_ratio,
            2,
            |v| v <= 1.1,
        ),
        (
            "RSS growth per subscription",
            "≤ 100 B",
            get(memory, "bytes_per_subscription"),
            1,
            |v| v <= 100.0,
        ),
        (
            "subscribe + unsubscribe pairs/s (slower case)",
            "≥ 1,000,000",
            slower_churn,
            0,
            |v| v >= 1e6,
        ),
    ];
    md.push_str("\n| S8 target (**bold**: not met) | limit | figure |\n|---|---|---|\n");
    for (what, limit, figure, digits, met) in rows {
        let figure = match figure {
            Some(v) if met(v) => format!("{v:.digits$}"),
            Some(v) => format!("**{v:.digits$}**"),
            None => "–".into(),
        };
        let _ = writeln!(md, "| {what} | {limit} | {figure} |");
    }
    md
}
