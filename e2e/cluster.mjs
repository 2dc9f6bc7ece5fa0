// The examples as a cluster: every example binary given, each its own process with REDIS_URL
// pointing at a redis-server of this script's own (free port). Chat messages sent on any of
// them reach a client on each of them, once, in order per sender; Chromium's EventSource,
// behind a proxy that moves it from the first node to the second (a load balancer losing a
// node), resumes there with Last-Event-ID without loss; with Redis killed a node's own clients
// still get its messages; after Redis restarts, cross-node delivery comes back within 2 s.
// Without redis-server on PATH: skipped loudly, except under CI=true (a failure).

import { spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import WebSocket from 'ws';

function redisPresent() {
  return spawnSync('redis-server', ['--version']).status === 0;
}

// Starts redis-server on `port`; resolves once it logs that it accepts connections (an event
// to await, rather than polling the port).
function startRedis(port) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not come up: ${log}`)), 20000);
    proc.stdout.on('data', (chunk) => {
      log += chunk;
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        proc.stdout.resume(); // keep draining
        resolve(proc);
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code}): ${log}`)); });
  });
}

// A client that collects chat messages and lets a test wait for one.
function client(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/chat`);
    const got = [];
    const waiters = [];
    ws.on('message', (data) => {
      got.push(String(data));
      for (const w of waiters.splice(0)) w();
    });
    ws.once('open', () => resolve({
      ws,
      got,
      // resolves when `pred(got)` holds, or rejects after `ms`
      until(pred, ms = 10000) {
        return new Promise((res, rej) => {
          const timer = setTimeout(() => rej(new Error(`timed out; got ${JSON.stringify(got)}`)), ms);
          const check = () => (pred(got) ? (clearTimeout(timer), res()) : waiters.push(check));
          check();
        });
      },
    }));
    ws.once('error', reject);
  });
}

export async function cluster(binaries, { start, stop, freePort, browser, proxy, openChat, logHas }) {
  const results = { passed: 0, failed: 0 };
  const report = (ok, title, error) => {
    if (ok) {
      results.passed += 1;
      console.log(`ok - cluster: ${title}`);
    } else {
      results.failed += 1;
      console.log(`not ok - cluster: ${title}\n  ${String(error && (error.stack || error)).split('\n').join('\n  ')}`);
    }
  };
  if (!redisPresent()) {
    if (process.env.CI === 'true' || process.env.CI === '1') {
      report(false, 'redis-server is required under CI', 'not found on PATH');
    } else {
      console.log('\n!!! cluster checks SKIPPED: redis-server not found on PATH. CI runs them. !!!\n');
    }
    return results;
  }
  const redisPort = await freePort();
  let redis = await startRedis(redisPort);
  const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}/` };
  const servers = [];
  const clients = [];
  try {
    for (const binary of binaries) servers.push(await start(binary, env));
    for (const s of servers) clients.push(await client(s.port));
    // the backplanes subscribe in the background: wait until a probe crosses every node
    const ready = async () => {
      for (let i = 0; ; i++) {
        clients[0].ws.send(`ready ${i}`);
        try {
          await Promise.all(clients.map((c) => c.until((g) => g.includes(`ready ${i}`), 200)));
          return;
        } catch { /* not yet */ }
      }
    };
    await ready();
    const onceTitle = `messages on any of ${servers.length} processes reach a client on each, once, in order per sender`;
    try {
      const K = 10;
      for (let k = 0; k < K; k++) clients.forEach((c, n) => c.ws.send(`hello from ${n} #${k}`));
      const want = clients.map((_, n) => Array.from({ length: K }, (_, k) => `hello from ${n} #${k}`));
      await Promise.all(clients.map((c) => c.until((g) => want.every((w) => g.includes(w[K - 1])))));
      for (const c of clients) {
        want.forEach((w, n) => {
          const from = c.got.filter((m) => m.startsWith(`hello from ${n} #`));
          assert.deepEqual(from, w, `from node ${n}: lost, duplicated or out of order`);
        });
      }
      report(true, onceTitle);
    } catch (error) {
      report(false, onceTitle, error);
    }
    if (browser && servers.length >= 3) {
      const title = 'EventSource moved to another node by the load balancer resumes with Last-Event-ID, nothing lost';
      const lb = await proxy(servers[0].port);
      try {
        const follower = await openChat(browser, `http://127.0.0.1:${lb.port}/`);
        const sender = clients[2];
        const tag = `x${Date.now()}`;
        sender.ws.send(`${tag}-1`);
        await logHas(follower, 'sse-log', `${tag}-1`);
        lb.retarget(servers[1].port);
        lb.dropAll(); // node 0 is gone for this browser; it reconnects to node 1
        for (let i = 2; i <= 5; i++) sender.ws.send(`${tag}-${i}`);
        await sender.until((g) => g.includes(`${tag}-5`));
        await logHas(follower, 'sse-log', `${tag}-5`);
        const lines = await follower.$$eval('#sse-log div', (ds) => ds.map((d) => d.textContent));
        const mine = lines.filter((l) => l.includes(tag));
        assert.deepEqual(mine.map((l) => l.split(' ').pop().replace(/"/g, '')),
          [1, 2, 3, 4, 5].map((i) => `${tag}-${i}`), `lost or duplicated: ${JSON.stringify(lines)}`);
        const ids = mine.map((l) => Number(l.slice(1).split(' ')[0]));
        assert.ok(ids.every((id, i) => i === 0 || ids[i - 1] < id), `ids out of order: ${ids}`);
        await follower.close();
        report(true, title);
      } catch (error) {
        report(false, title, error);
      } finally {
        lb.close();
      }
    }
    try {
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      clients[0].ws.send('local while redis is down');
      await clients[0].until((g) => g.includes('local while redis is down'));
      redis = await startRedis(redisPort);
      const restarted = Date.now();
      const last = clients[clients.length - 1];
      for (let i = 0; ; i++) {
        clients[0].ws.send(`probe ${i}`);
        try {
          await last.until((g) => g.some((m) => m.startsWith('probe')), 100);
          break;
        } catch {
          if (Date.now() - restarted > 10000) throw new Error('cross-node delivery never came back');
        }
      }
      const took = Date.now() - restarted;
      if (took >= 2000) throw new Error(`cross-node delivery came back after ${took} ms`);
      report(true, `Redis killed: local delivery goes on; restarted: cross-node back in ${took} ms`);
    } catch (error) {
      report(false, 'Redis killed and restarted', error);
    }
  } finally {
    for (const c of clients) c.ws.close();
    for (const s of servers) await stop(s);
    redis.kill('SIGKILL');
  }
  return results;
}
