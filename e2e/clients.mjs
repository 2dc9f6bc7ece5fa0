// Round trips with independent Node clients (ws, eventsource) against an example.

import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import assert from 'node:assert/strict';

const open = (url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.once('open', () => resolve(ws));
  ws.once('error', reject);
});

const next = (ws) => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));

async function echo(wsBase) {
  const ws = await open(wsBase + 'ws/echo');
  ws.send('héllo');
  const text = await next(ws);
  assert.equal(text.isBinary, false);
  assert.equal(text.data.toString(), 'héllo');
  ws.send(Buffer.from([0, 1, 255]));
  const bin = await next(ws);
  assert.equal(bin.isBinary, true);
  assert.deepEqual([...bin.data], [0, 1, 255]);
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(1000);
  assert.equal(await closed, 1000);
}

async function chat(wsBase) {
  const a = await open(wsBase + 'ws/chat');
  const b = await open(wsBase + 'ws/chat');
  const got = next(b);
  a.send(JSON.stringify({ type: 'chat', text: 'from node' }));
  assert.equal(JSON.parse((await got).data.toString()).text, 'from node');
  a.close();
  b.close();
}

async function feed(base) {
  const es = new EventSource(base + 'events/feed');
  const tick = await new Promise((resolve, reject) => {
    es.addEventListener('tick', (e) => resolve(JSON.parse(e.data)));
    es.onerror = (e) => reject(new Error(`EventSource error: ${e.message}`));
  });
  es.close();
  assert.equal(typeof tick.count, 'number');
  assert.match(tick.time, /Z$/);
}

async function sseChat(base, wsBase) {
  const es = new EventSource(base + 'events/chat');
  await new Promise((resolve) => { es.onopen = resolve; });
  const got = new Promise((resolve) => { es.onmessage = resolve; });
  const ws = await open(wsBase + 'ws/chat');
  ws.send('a\r\nb\revent: forged');
  const e = await got;
  assert.equal(e.data, 'a\nb\nevent: forged');
  assert.match(e.lastEventId, /^\d+$/);
  es.close();
  ws.close();
}

export async function nodeClients(base) {
  const wsBase = base.replace('http://', 'ws://');
  const checks = [
    ['echo of text and binary, clean close (ws)', () => echo(wsBase)],
    ['chat broadcast reaches another client (ws)', () => chat(wsBase)],
    ['feed tick as JSON (eventsource)', () => feed(base)],
    ['a WebSocket message reaches an SSE subscriber intact (eventsource)', () => sseChat(base, wsBase)],
  ];
  let passed = 0;
  let failed = 0;
  for (const [title, run] of checks) {
    try {
      await Promise.race([run(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 15000))]);
      passed += 1;
      console.log(`ok - node: ${title}`);
    } catch (error) {
      failed += 1;
      console.log(`not ok - node: ${title}: ${error.stack || error}`);
    }
  }
  return { passed, failed };
}
