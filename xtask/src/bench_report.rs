//! The benchmark's outputs: the machine description, the markdown tables (ratios against the
//! floor and peers measured in the same run, and each target against its figure) and the SVG
//! plot.

use crate::bench_harness::TOPOLOGIES;
use serde_json::{json, Value};
use std::fmt::Write;

/// The machine the run happened on.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|m| m.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024 / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({"cpu": model, "cores": cores, "memory_gib": memory, "kernel": kernel.trim()})
}

pub(crate) fn records(results: &Value) -> &[Value] {
    results["records"].as_array().map_or(&[], Vec::as_slice)
}

/// The figures of every record of `server` for `scenario` whose params contain all of `params`.
fn matching<'r>(
    results: &'r Value,
    server: &str,
    scenario: &str,
    params: &Value,
) -> Vec<&'r Value> {
    records(results)
        .iter()
        .filter(|r| {
            r["server"] == server
                && r["scenario"] == scenario
                && params
                    .as_object()
                    .is_none_or(|p| p.iter().all(|(k, v)| r["params"][k] == *v))
        })
        .map(|r| &r["figures"])
        .collect()
}

/// The figures of the first matching record.
fn find<'r>(results: &'r Value, server: &str, scenario: &str, params: &Value) -> Option<&'r Value> {
    matching(results, server, scenario, params).first().copied()
}

/// The median of `key` over every matching record (repeated trials).
fn median(results: &Value, server: &str, scenario: &str, params: &Value, key: &str) -> Option<f64> {
    let mut values: Vec<f64> = matching(results, server, scenario, params)
        .into_iter()
        .filter_map(|f| f[key].as_f64())
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// A stalled reader's cost to the others' throughput, in %, from the medians.
fn stalled_cost(results: &Value, server: &str) -> Option<f64> {
    let free = median(
        results,
        server,
        "S4",
        &json!({"stalled": false}),
        "deliveries_per_s",
    )?;
    let slow = median(
        results,
        server,
        "S4",
        &json!({"stalled": true}),
        "deliveries_per_s",
    )?;
    (free > 0.0).then(|| (free - slow) / free * 100.0)
}

fn num(figures: Option<&Value>, key: &str) -> Option<f64> {
    figures?.get(key)?.as_f64()
}

fn servers(results: &Value, scenario: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for r in records(results) {
        let name = r["server"].as_str().unwrap_or_default().to_string();
        if r["scenario"] == scenario && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, r["ours"].as_bool().unwrap_or(false)));
        }
    }
    out
}

pub(crate) fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn ratio(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!(" ({:.2}×)", v / b),
        _ => String::new(),
    }
}

fn size_label(size: u64) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// The tables, then the targets.
pub(crate) fn markdown(results: &Value) -> String {
    let mut md = String::new();
    let m = &results["machine"];
    let _ = writeln!(
        md,
        "Machine: {} ({} cores, {} GiB), Linux {}. Server pinned to core 0, load generator to \
         core 1. Server CPU is utime+stime of every server thread (schedstat).\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?")
    );
    let sizes: Vec<u64> = {
        let mut v: Vec<u64> = records(results)
            .iter()
            .filter(|r| r["scenario"] == "S1")
            .filter_map(|r| r["params"]["size"].as_u64())
            .collect();
        v.dedup();
        v.sort_unstable();
        v.dedup();
        v
    };
    let clients = records(results)
        .iter()
        .find(|r| r["scenario"] == "S1")
        .map_or(json!(0), |r| r["params"]["clients"].clone());

    let _ = writeln!(
        md,
        "### S1 fan-out: server CPU µs per delivery ({clients} clients; × floor)\n"
    );
    let mut head = String::from("| server |");
    let mut rule = String::from("|---|");
    for size in &sizes {
        for batch in [1, 16] {
            let _ = write!(head, " {} ×{batch} |", size_label(*size));
            rule.push_str("---|");
        }
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for (server, _) in servers(results, "S1") {
        let mut row = format!("| {server} |");
        for size in &sizes {
            for batch in [1, 16] {
                let p = json!({"size": size, "batch": batch});
                let v = num(find(results, &server, "S1", &p), "cpu_us_per_delivery");
                let floor = num(find(results, "floor", "S1", &p), "cpu_us_per_delivery");
                let _ = write!(row, " {}{} |", cell(v, 2), ratio(v, floor));
            }
        }
        let _ = writeln!(md, "{row}");
    }

    let _ = writeln!(
        md,
        "\n### S2 latency, open loop, 50 msg/s to every client (ms)\n"
    );
    let _ = writeln!(
        md,
        "| server | p50 | p99 | p99.9 | max | all delivered |\n|---|---|---|---|---|---|"
    );
    for (server, _) in servers(results, "S2") {
        let f = find(results, &server, "S2", &json!({}));
        let ms = |k: &str| cell(num(f, k).map(|us| us / 1000.0), 2);
        let _ = writeln!(
            md,
            "| {server} | {} | {} | {} | {} | {} |",
            ms("p50_us"),
            ms("p99_us"),
            ms("p999_us"),
            ms("max_us"),
            f.and_then(|f| f["complete"].as_bool()).unwrap_or(false)
        );
    }

    let _ = writeln!(md, "\n### S3 server memory per connection (kB RSS)\n");
    let _ = writeln!(
        md,
        "| server | idle | after one 8 KB message |\n|---|---|---|"
    );
    for (server, _) in servers(results, "S3") {
        let f = find(results, &server, "S3", &json!({}));
        let _ = writeln!(
            md,
            "| {server} | {} | {} |",
            cell(num(f, "idle_kb_per_conn"), 1),
            cell(num(f, "after_message_kb_per_conn"), 1)
        );
    }

    let _ = writeln!(
        md,
        "\n### S4 slow-client isolation (4 KiB messages, batches of 16; medians of the trials)\n"
    );
    let _ = writeln!(
        md,
        "| server | deliveries/s | with a stalled reader | cost | stalled reader got | its close code | server RSS growth |\n|---|---|---|---|---|---|---|"
    );
    for (server, _) in servers(results, "S4") {
        let slow = find(results, &server, "S4", &json!({"stalled": true}));
        let a = median(
            results,
            &server,
            "S4",
            &json!({"stalled": false}),
            "deliveries_per_s",
        );
        let b = median(
            results,
            &server,
            "S4",
            &json!({"stalled": true}),
            "deliveries_per_s",
        );
        let cost = stalled_cost(results, &server).map_or("–".into(), |c| format!("{c:+.1} %"));
        let got = format!(
            "{} msgs, {} KiB",
            cell(num(slow, "stalled_messages"), 0),
            cell(num(slow, "stalled_bytes").map(|b| b / 1024.0), 0)
        );
        let code = slow
            .and_then(|f| f["stalled_close_code"].as_u64())
            .map_or("not closed".into(), |c| c.to_string());
        let _ = writeln!(
            md,
            "| {server} | {} | {} | {cost} | {got} | {code} | {} MiB |",
            cell(a, 0),
            cell(b, 0),
            cell(num(slow, "rss_growth_kib").map(|k| k / 1024.0), 1)
        );
    }

    let _ = writeln!(
        md,
        "\n### S5 Server-Sent Events against WebSocket (64 B; µs CPU per delivery)\n"
    );
    let _ = writeln!(
        md,
        "| server | WS ×1 | SSE ×1 | WS ×16 | SSE ×16 | SSE p99 (ms) |\n|---|---|---|---|---|---|"
    );
    for (server, _) in servers(results, "S5") {
        let mut row = format!("| {server} |");
        for batch in [1, 16] {
            let p = json!({"size": 64, "batch": batch});
            let ws = num(find(results, &server, "S1", &p), "cpu_us_per_delivery");
            let sse = num(find(results, &server, "S5", &p), "cpu_us_per_delivery");
            let _ = write!(
                row,
                " {} | {}{} |",
                cell(ws, 2),
                cell(sse, 2),
                ratio(sse, ws)
            );
        }
        let p99 = num(find(results, &server, "S5-latency", &json!({})), "p99_us");
        let _ = writeln!(md, "{row} {} |", cell(p99.map(|u| u / 1000.0), 2));
    }

    let _ = writeln!(md, "\n### S6 keepalive at scale (a ping every second)\n");
    let _ = writeln!(md, "| server | connections | pings answered | µs CPU per ping | closed by the server |\n|---|---|---|---|---|");
    for (server, _) in servers(results, "S6") {
        let f = find(results, &server, "S6", &json!({}));
        let _ = writeln!(
            md,
            "| {server} | {} | {} | {} | {} |",
            cell(num(f, "connections"), 0),
            cell(num(f, "pings"), 0),
            cell(num(f, "cpu_us_per_ping"), 2),
            cell(num(f, "closed_by_server"), 0)
        );
    }
    md.push_str(&crate::bench_deflate::markdown(results));
    md.push_str(&cluster_markdown(results));
    md.push_str(&crate::bench_topics::markdown(results));
    md.push_str(&targets(results));
    md
}

/// Each target against each of our adapters.
fn targets(results: &Value) -> String {
    let ours: Vec<String> = servers(results, "S1")
        .into_iter()
        .filter(|(_, ours)| *ours)
        .map(|(n, _)| n)
        .collect();
    let s1 = |server: &str, batch: u64| {
        num(
            find(results, server, "S1", &json!({"size": 64, "batch": batch})),
            "cpu_us_per_delivery",
        )
    };
    let s3 = |server: &str, key: &str| num(find(results, server, "S3", &json!({})), key);
    let floor1 = s1("floor", 1);
    type Figure<'a> = Box<dyn Fn(&str) -> Option<f64> + 'a>;
    let rows: Vec<(&str, f64, &str, Figure<'_>)> = vec![
        (
            "server CPU per delivery, 64 B in batches of 16",
            0.45,
            "µs",
            Box::new(|s| s1(s, 16)),
        ),
        (
            "unbatched (64 B) against the floor",
            1.1,
            "×",
            Box::new(|s| Some(s1(s, 1)? / floor1?)),
        ),
        (
            "idle memory per connection",
            2.0,
            "kB",
            Box::new(|s| s3(s, "idle_kb_per_conn")),
        ),
        (
            "after one 8 KB message",
            4.0,
            "kB",
            Box::new(|s| s3(s, "after_message_kb_per_conn")),
        ),
        (
            "p99 latency, 50 msg/s to 1,000 clients",
            5.0,
            "ms",
            Box::new(|s| num(find(results, s, "S2", &json!({})), "p99_us").map(|u| u / 1000.0)),
        ),
        (
            "a stalled reader's cost to the others",
            5.0,
            "%",
            Box::new(|s| stalled_cost(results, s)),
        ),
        (
            "SSE against WebSocket per delivery (worse batch)",
            1.2,
            "×",
            Box::new(|s| {
                [1u64, 16]
                    .iter()
                    .filter_map(|b| {
                        let p = json!({"size": 64, "batch": b});
                        Some(
                            num(find(results, s, "S5", &p), "cpu_us_per_delivery")?
                                / num(find(results, s, "S1", &p), "cpu_us_per_delivery")?,
                        )
                    })
                    .reduce(f64::max)
            }),
        ),
        (
            "permessage-deflate against plain, CPU per delivery (1 KiB JSON, worse batch)",
            crate::bench_deflate::CPU_TARGET,
            "×",
            Box::new(|s| crate::bench_deflate::cpu_ratio(results, s)),
        ),
        (
            "permessage-deflate against plain, bytes on the wire per delivery (worse batch)",
            crate::bench_deflate::WIRE_TARGET,
            "%",
            Box::new(|s| crate::bench_deflate::wire_percent(results, s)),
        ),
    ];
    let mut md = String::from("\n### Targets (**bold**: not met)\n\n| target | limit |");
    let mut rule = String::from("|---|---|");
    for server in &ours {
        let _ = write!(md, " {server} |");
        rule.push_str("---|");
    }
    let _ = writeln!(md, "\n{rule}");
    for (what, limit, unit, figure) in rows {
        let _ = write!(md, "| {what} | ≤ {limit} {unit} |");
        for server in &ours {
            let cell = match figure(server) {
                Some(v) if v <= limit => format!("{v:.2}"),
                Some(v) => format!("**{v:.2}**"),
                None => "–".into(),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md
}

fn bars(svg: &mut String, x: f64, y: f64, title: &str, rows: &[(String, f64, bool)], unit: &str) {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let _ = writeln!(
        svg,
        r#"<text x="{x}" y="{y}" font-size="14" font-weight="bold">{title}</text>"#
    );
    for (i, (name, v, ours)) in rows.iter().enumerate() {
        let row_y = y + 14.0 + i as f64 * 24.0;
        let width = 220.0 * v / max;
        let fill = if *ours { "#2b6cb0" } else { "#a0aec0" };
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{}" font-size="12">{name}</text><rect x="{}" y="{row_y}" width="{width:.1}" height="16" fill="{fill}"/><text x="{}" y="{}" font-size="12">{v:.2} {unit}</text>"#,
            row_y + 12.0,
            x + 170.0,
            x + 175.0 + width,
            row_y + 12.0
        );
    }
}

/// µs per delivery and memory per connection, ours (blue) against the peers (grey).
pub(crate) fn svg(results: &Value) -> String {
    let list = servers(results, "S1");
    let cpu: Vec<(String, f64, bool)> = list
        .iter()
        .filter_map(|(s, ours)| {
            let v = num(
                find(results, s, "S1", &json!({"size": 64, "batch": 16})),
                "cpu_us_per_delivery",
            )?;
            Some((s.clone(), v, *ours))
        })
        .collect();
    let mut cpu = cpu;
    cpu.extend(crate::bench_topics::plot_rows(results));
    let mem: Vec<(String, f64, bool)> = list
        .iter()
        .filter_map(|(s, ours)| {
            let v = num(find(results, s, "S3", &json!({})), "idle_kb_per_conn")?;
            Some((s.clone(), v, *ours))
        })
        .collect();
    let height = 60.0 + 24.0 * cpu.len().max(mem.len()) as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height}" font-family="sans-serif">"#
    );
    svg.push('\n');
    svg.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    bars(
        &mut svg,
        10.0,
        20.0,
        "server CPU per delivery (64 B, batch 16)",
        &cpu,
        "µs",
    );
    bars(
        &mut svg,
        490.0,
        20.0,
        "server memory per idle connection",
        &mem,
        "kB",
    );
    svg.push_str("</svg>\n");
    svg
}

/// The S7 table: each topology against the single in-memory node.
fn cluster_markdown(results: &Value) -> String {
    let s7: Vec<&Value> = records(results)
        .iter()
        .filter(|r| r["scenario"] == "S7")
        .collect();
    let Some(first) = s7.first() else {
        return String::new();
    };
    let figure = |topology: &str, batch: Option<u64>, key: &str| {
        s7.iter()
            .find(|r| {
                r["params"]["topology"] == topology
                    && r["figures"][key].is_number()
                    && batch.is_none_or(|b| r["params"]["batch"] == b)
            })
            .and_then(|r| r["figures"][key].as_f64())
    };
    let times = |v: Option<f64>, base: Option<f64>| match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{v:.2} ({:.2}×)", v / b),
        _ => cell(v, 2),
    };
    let mut md = format!(
        "\n### S7 cross-node fan-out ({}, 64 B, {} clients on the receiving node; CPU of every \
         process of the topology per delivery, × the single in-memory node)\n\n",
        first["server"].as_str().unwrap_or("?"),
        first["params"]["clients"]
    );
    md.push_str(
        "| topology | µs/delivery B=1 | µs/delivery B=16 | deliveries/s B=16 | p50 ms | p99 ms \
         | p99 added (ms) |\n|---|---|---|---|---|---|---|\n",
    );
    let base = |batch: Option<u64>, key: &str| figure(TOPOLOGIES[0], batch, key);
    for topology in TOPOLOGIES {
        let per = |b: u64| {
            let key = "cpu_us_per_delivery";
            times(figure(topology, Some(b), key), base(Some(b), key))
        };
        let p99 = figure(topology, None, "p99_us");
        let added = p99.zip(base(None, "p99_us")).map(|(v, b)| (v - b) / 1000.0);
        let _ = writeln!(
            md,
            "| {topology} | {} | {} | {} | {} | {} | {} |",
            per(1),
            per(16),
            cell(figure(topology, Some(16), "deliveries_per_s"), 0),
            cell(figure(topology, None, "p50_us").map(|u| u / 1000.0), 2),
            cell(p99.map(|u| u / 1000.0), 2),
            cell(added, 2),
        );
    }
    md
}
