// Browser end-to-end tests of the examples, in Debian's Chromium driven by playwright-core.
// Usage: node e2e.mjs <example binary>...   (cargo xtask e2e builds them and calls this)
//
// For each example: two pages chat over WebSocket and follow it over SSE; an EventSource gets
// the feed's JSON ticks; pages in rooms see only their rooms, as does a room's EventSource;
// after a server-side drop the EventSource resumes from Last-Event-ID with no loss and no
// duplicate; a page from another origin is refused under ALLOWED_ORIGINS; after a scripted
// run on a fresh process, /metrics parses with Python prometheus_client's strict parser and
// its counters match the script (operations.mjs); under AUTH_TOKEN a page's WebSocket
// offering ["bearer", token] connects with ws.protocol "bearer" and a bad token gets 401 and
// onerror (auth.mjs).
// Then independent clients (Node ws and eventsource, Python websockets and httpx-sse) make
// round trips against the first example, so the project is not only tested by its own client.
// Last, the examples run together as one cluster through Redis (cluster.mjs).

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import net from 'node:net';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { nodeClients } from './clients.mjs';
import { cluster } from './cluster.mjs';
import { authTest } from './auth.mjs';
import { metricsTest } from './operations.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = { timeout: 15000 };

function start(binary, env = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, [], {
      env: { ...process.env, PORT: '0', RUST_LOG: 'info', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${binary} did not start`)), 15000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/([\d.]+):(\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[2]) });
      }
    });
    proc.on('exit', (code) => reject(new Error(`${binary} exited with ${code}`)));
  });
}

function stop(server) {
  return new Promise((resolve) => {
    if (server.proc.exitCode !== null) return resolve();
    server.proc.once('exit', resolve);
    server.proc.kill('SIGINT');
  });
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A TCP proxy in front of the server, so a test can cut the browser's connections the way a
// server-side drop does; `retarget` sends new connections to another server, as a load
// balancer does when a node goes away.
function proxy(targetPort) {
  const sockets = new Set();
  let target = targetPort;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: server.address().port,
        dropAll: () => { for (const s of sockets) s.destroy(); },
        retarget: (port) => { target = port; },
        close: () => { for (const s of sockets) s.destroy(); server.close(); },
      }));
  });
}

async function openChat(browser, url) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null, WAIT);
  await page.waitForFunction(() => document.getElementById('sse-status').textContent === 'connected', null, WAIT);
  return page;
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('button');
}

const logHas = (page, id, text) =>
  page.waitForFunction(([id, t]) => document.getElementById(id).textContent.includes(t), [id, text], WAIT);

async function chatTest(browser, base) {
  const a = await openChat(browser, base);
  const b = await openChat(browser, base);
  await say(a, 'hello from A');
  for (const p of [a, b]) {
    await logHas(p, 'log', 'hello from A');
    await logHas(p, 'sse-log', 'hello from A');
  }
  await a.close();
  await b.close();
}

// permessage-deflate: Chromium offers it on every WebSocket; the example must agree to it
// (ws.extensions names it) and a broadcast (compressed once by the hub, RSV1 on the wire)
// must arrive intact in two pages, a large compressible one and a short one alike.
async function deflateTest(browser, base) {
  const wsUrl = base.replace('http://', 'ws://') + 'ws/chat';
  const pages = [await browser.newPage(), await browser.newPage()];
  const big = JSON.stringify({ type: 'chat', text: 'deflate '.repeat(400), n: [1, 2, 3] });
  const seen = pages.map((page) => page.evaluate(({ url, expect }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const got = [];
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onopen = () => { window.__deflateReady = true; };
    ws.onmessage = (event) => {
      got.push(event.data);
      if (expect.every((m) => got.includes(m))) resolve({ extensions: ws.extensions, got });
    };
  }), { url: wsUrl, expect: [big, 'short one'] }));
  for (const page of pages) await page.waitForFunction(() => window.__deflateReady === true, null, WAIT);
  await pages[0].evaluate(({ url, messages }) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => { for (const m of messages) ws.send(m); ws.close(); resolve(); };
  }), { url: wsUrl, messages: [big, 'short one'] });
  for (const result of await Promise.all(seen)) {
    if (!result.extensions.includes('permessage-deflate')) {
      throw new Error(`ws.extensions is ${JSON.stringify(result.extensions)}`);
    }
    if (!result.got.includes(big)) throw new Error('the large broadcast did not arrive intact');
  }
  for (const page of pages) await page.close();
}

async function joinRoom(page, room) {
  await page.fill('#room', room);
  await page.click('#join');
  await logHas(page, 'log', `(joined ${room})`);
}

// Sends `text` to `room` from the page's room field and waits until the page (a member) has it.
async function sayToRoom(page, room, text) {
  await page.fill('#room', room);
  await page.fill('#text', text);
  await page.click('#send-room');
  await logHas(page, 'log', `[${room}] ${text}`);
}

// Two pages in different rooms see only their room, a third in both sees both, and an
// EventSource on /events/chat?room=r sees room r only. Each message is sent after the last one
// reached its sender, and each room ends with a marker: a message delivered where it should
// not be would have arrived before the marker.
async function roomsTest(browser, base) {
  const tag = `t${Date.now()}`;
  const red = `${tag}-red`;
  const blue = `${tag}-blue`;
  const a = await openChat(browser, base);
  const b = await openChat(browser, base);
  const c = await openChat(browser, base);
  await joinRoom(a, red);
  await joinRoom(b, blue);
  await joinRoom(c, red);
  await joinRoom(c, blue);
  const watcher = await browser.newPage();
  await watcher.goto(base);
  await watcher.evaluate((room) => new Promise((resolve, reject) => {
    window.roomEvents = [];
    const es = new EventSource('/events/chat?room=' + encodeURIComponent(room));
    es.onopen = resolve;
    es.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      window.roomEvents.push(`${msg.room || '-'} ${msg.text}`);
    };
    setTimeout(() => reject(new Error('the room stream did not open')), 10000);
  }), red);
  await sayToRoom(a, red, 'red-1');
  await sayToRoom(b, blue, 'blue-1');
  await sayToRoom(c, blue, 'blue-2');
  await sayToRoom(c, red, 'red-2');
  await sayToRoom(a, red, 'red-end');
  await sayToRoom(c, blue, 'blue-end');
  await logHas(c, 'log', `[${red}] red-end`);
  await logHas(b, 'log', `[${blue}] blue-end`);
  await watcher.waitForFunction((room) => window.roomEvents.includes(`${room} red-end`), red, WAIT);
  const lines = (page) => page.$$eval('#log div', (ds) => ds.map((d) => d.textContent));
  const rooms = (all) => all.filter((l) => l.startsWith(`[${tag}-`));
  assert.deepEqual(rooms(await lines(a)), [`[${red}] red-1`, `[${red}] red-2`, `[${red}] red-end`]);
  assert.deepEqual(rooms(await lines(b)), [`[${blue}] blue-1`, `[${blue}] blue-2`, `[${blue}] blue-end`]);
  assert.deepEqual(rooms(await lines(c)), [`[${red}] red-1`, `[${blue}] blue-1`, `[${blue}] blue-2`,
    `[${red}] red-2`, `[${red}] red-end`, `[${blue}] blue-end`]);
  const seen = await watcher.evaluate(() => window.roomEvents);
  assert.deepEqual(seen.filter((l) => l.startsWith(tag)), [`${red} red-1`, `${red} red-2`, `${red} red-end`]);
  for (const page of [a, b, c, watcher]) await page.close();
}

async function feedTest(browser, base) {
  const page = await browser.newPage();
  await page.goto(base);
  const tick = await page.evaluate(() => new Promise((resolve, reject) => {
    const es = new EventSource('/events/feed');
    es.addEventListener('tick', (e) => { es.close(); resolve(JSON.parse(e.data)); });
    setTimeout(() => reject(new Error('no tick')), 10000);
  }));
  assert.match(tick.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(typeof tick.count, 'number');
  await page.close();
}

async function resumeTest(browser, base, port) {
  const p = await proxy(port);
  try {
    const follower = await openChat(browser, `http://127.0.0.1:${p.port}/`);
    const sender = await openChat(browser, base);
    const tag = `r${Date.now()}`;
    await say(sender, `${tag}-1`);
    await logHas(follower, 'sse-log', `${tag}-1`);
    p.dropAll(); // the server side goes away under the browser
    await say(sender, `${tag}-2`);
    await say(sender, `${tag}-3`);
    await logHas(sender, 'log', `${tag}-3`);
    await logHas(follower, 'sse-log', `${tag}-3`);
    const lines = await follower.$$eval('#sse-log div', (ds) => ds.map((d) => d.textContent));
    const mine = lines.filter((l) => l.includes(tag));
    assert.deepEqual(mine.map((l) => l.split(' ').pop().replace(/"/g, '')), [`${tag}-1`, `${tag}-2`, `${tag}-3`],
      `lost or duplicated after the reconnect: ${JSON.stringify(lines)}`);
    const ids = mine.map((l) => Number(l.slice(1).split(' ')[0]));
    assert.ok(ids[0] < ids[1] && ids[1] < ids[2], `ids out of order: ${ids}`);
    await follower.close();
    await sender.close();
  } finally {
    p.close();
  }
}

async function originTest(browser, binary) {
  const port = await freePort();
  const server = await start(binary, { PORT: String(port), ALLOWED_ORIGINS: `http://127.0.0.1:${port}` });
  try {
    const allowed = await openChat(browser, `http://127.0.0.1:${port}/`);
    await allowed.close();
    const other = await browser.newPage();
    await other.goto(`http://localhost:${port}/`);
    await other.waitForFunction(() => document.getElementById('status').textContent.startsWith('closed'), null, WAIT);
    await other.close();
  } finally {
    await stop(server);
  }
}

const binaries = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let passed = 0;
let failed = 0;
for (const binary of binaries) {
  const name = path.basename(binary);
  const server = await start(binary);
  const base = `http://127.0.0.1:${server.port}/`;
  const tests = [
    ['two pages chat over WebSocket and SSE', () => chatTest(browser, base)],
    ['EventSource receives JSON ticks', () => feedTest(browser, base)],
    ['rooms: each page sees its rooms only, and so does a room EventSource', () => roomsTest(browser, base)],
    ['permessage-deflate: ws.extensions names it and broadcasts arrive intact', () => deflateTest(browser, base)],
    ['EventSource resumes after a server-side drop', () => resumeTest(browser, base, server.port)],
    ['another origin is refused under ALLOWED_ORIGINS', () => originTest(browser, binary)],
    ['AUTH_TOKEN: bearer subprotocol admits, a bad token gets 401 and onerror', () => authTest(browser, binary, { start, stop, freePort })],
    ['/metrics parses and counts a scripted run (prometheus_client)', () => metricsTest(binary, { start, stop })],
  ];
  for (const [title, run] of tests) {
    try {
      await run();
      passed += 1;
      console.log(`ok - ${name}: ${title}`);
    } catch (error) {
      failed += 1;
      console.log(`not ok - ${name}: ${title}\n  ${String(error.stack || error).split('\n').join('\n  ')}`);
    }
  }
  if (binary === binaries[0]) {
    const node = await nodeClients(base);
    passed += node.passed;
    failed += node.failed;
    const python = spawnSync(process.env.PYTHON || 'python3', ['clients.py', base], { encoding: 'utf8' });
    process.stdout.write(python.stdout || '');
    process.stderr.write(python.stderr || '');
    const counts = (python.stdout || '').match(/python: (\d+) passed, (\d+) failed/);
    if (counts) {
      passed += Number(counts[1]);
      failed += Number(counts[2]);
    } else {
      failed += 1;
      console.log('not ok - python clients did not run (pip install -r e2e/requirements.txt)');
    }
  }
  await stop(server);
}
const joined = await cluster(binaries, { start, stop, freePort, browser, proxy, openChat, logHas });
await browser.close();
passed += joined.passed;
failed += joined.failed;
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
