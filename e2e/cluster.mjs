// The examples as a cluster: every example binary given, each its own process with REDIS_URL
// pointing at a redis-server of this script's own (free port). A chat message sent on any of
// them reaches a client on each of them, once; with Redis killed a node's own clients still get
// its messages; after Redis restarts, cross-node delivery comes back within 2 s.
// Without redis-server on PATH: skipped loudly, except under CI=true (a failure).

import { spawn, spawnSync } from 'node:child_process';
import WebSocket from 'ws';

function redisPresent() {
  return spawnSync('redis-server', ['--version']).status === 0;
}

function startRedis(port) {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  return proc;
}

async function untilOpen(port) {
  const net = await import('node:net');
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('redis-server did not come up');
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

export async function cluster(binaries, { start, stop, freePort }) {
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
  let redis = startRedis(redisPort);
  await untilOpen(redisPort);
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
    try {
      clients.forEach((c, n) => c.ws.send(`hello from ${n}`));
      const want = clients.map((_, n) => `hello from ${n}`);
      await Promise.all(clients.map((c) => c.until((g) => want.every((w) => g.includes(w)))));
      for (const c of clients) {
        for (const w of want) {
          const times = c.got.filter((m) => m === w).length;
          if (times !== 1) throw new Error(`${w} arrived ${times} times`);
        }
      }
      report(true, `a message on any of ${servers.length} processes reaches a client on each, once`);
    } catch (error) {
      report(false, `a message on any of ${servers.length} processes reaches a client on each, once`, error);
    }
    try {
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      clients[0].ws.send('local while redis is down');
      await clients[0].until((g) => g.includes('local while redis is down'));
      redis = startRedis(redisPort);
      await untilOpen(redisPort);
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
