// /metrics after a scripted run: a fresh example process gets a known script of WebSocket and
// SSE traffic (Node ws and eventsource), then its /metrics is parsed by Python
// prometheus_client's strict OpenMetrics parser (metrics.py, an independent check of the
// encoding) and every counter is compared with what the script did.
//
// Usage: node operations.mjs <example binary>...   (e2e.mjs calls metricsTest per example)

import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const open = (url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.once('open', () => resolve(ws));
  ws.once('error', reject);
});

// Resolves with the first `n` text messages of `ws`.
const collect = (ws, n) => new Promise((resolve) => {
  const got = [];
  ws.on('message', (data) => {
    got.push(data.toString());
    if (got.length === n) resolve(got);
  });
});

const closed = (ws) => new Promise((resolve) => {
  ws.once('close', (code) => resolve(code));
  ws.close(1000);
});

// The parsed exposition: { types, samples: [[name, labels, value]] } (metrics.py).
function scrape(base) {
  const run = spawnSync(process.env.PYTHON || 'python3', ['metrics.py', base + 'metrics'], { encoding: 'utf8' });
  assert.equal(run.status, 0, `metrics.py: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

// The value of sample `name` for hub `hub` (and any further labels).
function value(parsed, name, hub, labels = {}) {
  const want = { hub, ...labels };
  const found = parsed.samples.filter(([n, l]) => n === name
    && Object.entries(want).every(([k, v]) => l[k] === v));
  assert.equal(found.length, 1, `${name}${JSON.stringify(want)}: ${found.length} samples`);
  return found[0][2];
}

// The sum of sample `name` for hub `hub` over its other labels (a reason, say).
const total = (parsed, name, hub) => parsed.samples
  .filter(([n, l]) => n === name && l.hub === hub)
  .reduce((sum, [, , v]) => sum + v, 0);

const CHAT_MESSAGES = 5;
const ECHO_CLIENTS = 2;
const ECHO_MESSAGES = 4;

// The script: three chat clients and one chat event stream, one chat client sends 5 messages
// of 2 bytes that everyone gets; two echo clients send 4 messages of 8 bytes each and get them
// back; then everybody leaves.
async function script(base) {
  const wsBase = base.replace('http://', 'ws://');
  const chat = [];
  for (let i = 0; i < 3; i += 1) chat.push(await open(wsBase + 'ws/chat'));
  const es = new EventSource(base + 'events/chat');
  await new Promise((resolve, reject) => {
    es.onopen = resolve;
    es.onerror = (e) => reject(new Error(`EventSource error: ${e.message}`));
  });
  const streamed = new Promise((resolve) => {
    const got = [];
    es.onmessage = (e) => {
      got.push(e.data);
      if (got.length === CHAT_MESSAGES) resolve(got);
    };
  });
  const sent = [...Array(CHAT_MESSAGES).keys()].map((n) => `m${n}`);
  const received = chat.map((ws) => collect(ws, CHAT_MESSAGES));
  for (const text of sent) chat[0].send(text);
  for (const got of await Promise.all(received)) assert.deepEqual(got, sent);
  assert.deepEqual(await streamed, sent);
  for (let c = 0; c < ECHO_CLIENTS; c += 1) {
    const ws = await open(wsBase + 'ws/echo');
    const texts = [...Array(ECHO_MESSAGES).keys()].map((n) => `echo-${c}-${n}`);
    const echoed = collect(ws, ECHO_MESSAGES);
    for (const text of texts) ws.send(text);
    assert.deepEqual(await echoed, texts);
    assert.equal(await closed(ws), 1000);
  }
  es.close();
  for (const ws of chat) assert.equal(await closed(ws), 1000);
}

export async function metricsTest(binary, { start, stop }) {
  const server = await start(binary);
  try {
    const base = `http://127.0.0.1:${server.port}/`;
    await script(base);
    // every departure is counted once the server has seen it (the event stream's close is
    // noticed asynchronously): scrape until nobody is connected, within a deadline
    const deadline = Date.now() + 10000;
    let parsed = scrape(base);
    while (value(parsed, 'hub_connected_clients', 'chat') !== 0
      || value(parsed, 'hub_connected_clients', 'echo') !== 0) {
      assert.ok(Date.now() < deadline, 'clients still connected 10 s after leaving');
      await new Promise((resolve) => setTimeout(resolve, 50));
      parsed = scrape(base);
    }
    assert.equal(parsed.types.hub_connections, 'counter');
    assert.equal(parsed.types.hub_connected_clients, 'gauge');
    const chatExpected = {
      hub_connections_total: 4, // 3 WebSocket clients and 1 event stream
      hub_messages_received_total: CHAT_MESSAGES,
      hub_received_bytes_total: CHAT_MESSAGES * 2,
      hub_broadcasts_total: CHAT_MESSAGES,
      hub_messages_sent_total: CHAT_MESSAGES * 4, // to each of the 4 members
      hub_rate_limited_messages_total: 0,
      hub_dropped_messages_total: 0,
    };
    const echoExpected = {
      hub_connections_total: ECHO_CLIENTS,
      hub_messages_received_total: ECHO_CLIENTS * ECHO_MESSAGES,
      hub_received_bytes_total: ECHO_CLIENTS * ECHO_MESSAGES * 8,
      hub_messages_sent_total: ECHO_CLIENTS * ECHO_MESSAGES,
      hub_sent_bytes_total: ECHO_CLIENTS * ECHO_MESSAGES * 8,
      hub_broadcasts_total: 0,
      hub_dropped_messages_total: 0,
    };
    for (const [hub, expected] of [['chat', chatExpected], ['echo', echoExpected]]) {
      for (const [name, want] of Object.entries(expected)) {
        assert.equal(value(parsed, name, hub), want, `${name}{hub="${hub}"}`);
      }
      assert.equal(total(parsed, 'hub_disconnects_total', hub), expected.hub_connections_total,
        `hub_disconnects_total{hub="${hub}"}, every reason`);
      assert.equal(total(parsed, 'hub_rejected_upgrades_total', hub), 0, `hub_rejected_upgrades_total{hub="${hub}"}`);
    }
    // the WebSocket clients closed with 1000: that reason, exactly
    assert.equal(value(parsed, 'hub_disconnects_total', 'echo', { reason: 'peer_closed' }), ECHO_CLIENTS);
  } finally {
    await stop(server);
  }
}

// Standalone: node operations.mjs <binary>...
if (import.meta.url === `file://${process.argv[1]}`) {
  const { spawn } = await import('node:child_process');
  const start = (binary) => new Promise((resolve, reject) => {
    const proc = spawn(binary, [], { env: { ...process.env, PORT: '0', RUST_LOG: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/([\d.]+):(\d+)\//);
      if (m) resolve({ proc, port: Number(m[2]) });
    });
    proc.on('exit', (code) => reject(new Error(`${binary} exited with ${code}`)));
  });
  const stop = (server) => new Promise((resolve) => {
    if (server.proc.exitCode !== null) return resolve();
    server.proc.once('exit', resolve);
    server.proc.kill('SIGTERM');
  });
  let failed = 0;
  for (const binary of process.argv.slice(2)) {
    try {
      await metricsTest(binary, { start, stop });
      console.log(`ok - ${binary}: /metrics counts a scripted run`);
    } catch (error) {
      failed += 1;
      console.log(`not ok - ${binary}: /metrics counts a scripted run\n  ${error.stack || error}`);
    }
  }
  process.exit(failed === 0 ? 0 : 1);
}
