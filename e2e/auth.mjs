// AUTH_TOKEN in Chromium: a browser's WebSocket can only send its token as subprotocols,
// `new WebSocket(url, ["bearer", token])`; the 101 must answer `bearer` (else Chromium fails the
// connection), and a wrong token must get a 401 that the page sees as `onerror`. An EventSource
// sends `?token=`.

import assert from 'node:assert/strict';

const TOKEN = 'e2e-T0ken_42';
const WAIT = { timeout: 15000 };

// Polls `done` until it holds, failing after WAIT.
async function until(done, what) {
  const deadline = Date.now() + WAIT.timeout;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Opens a WebSocket from the page; resolves with what the page saw.
function openSocket(page, url, protocols) {
  return page.evaluate(({ url, protocols }) => new Promise((resolve) => {
    const ws = new WebSocket(url, protocols);
    ws.onopen = () => {
      ws.onmessage = (event) => {
        resolve({ opened: true, protocol: ws.protocol, echoed: event.data });
        ws.close();
      };
      ws.send('hello through auth');
    };
    ws.onerror = () => resolve({ opened: false, error: true });
  }), { url, protocols });
}

// Opens an EventSource; resolves with 'open' or 'error' (and its readyState).
function openEvents(page, url) {
  return page.evaluate((url) => new Promise((resolve) => {
    const es = new EventSource(url);
    es.onopen = () => { resolve({ open: true }); es.close(); };
    es.onerror = () => { resolve({ open: false, closed: es.readyState === EventSource.CLOSED }); es.close(); };
  }), url);
}

export async function authTest(browser, binary, { start, stop, freePort }) {
  const port = await freePort();
  const server = await start(binary, { PORT: String(port), AUTH_TOKEN: TOKEN });
  const page = await browser.newPage();
  const logged = [];
  page.on('console', (message) => logged.push(message.text()));
  try {
    await page.goto(`http://127.0.0.1:${port}/`, WAIT);
    const ws = (path) => `ws://127.0.0.1:${port}${path}`;
    const good = await openSocket(page, ws('/ws/echo'), ['bearer', TOKEN]);
    assert.deepEqual(good, { opened: true, protocol: 'bearer', echoed: 'hello through auth' });
    const chat = await openSocket(page, ws('/ws/chat'), ['bearer', TOKEN]);
    assert.equal(chat.protocol, 'bearer');
    const bad = await openSocket(page, ws('/ws/chat'), ['bearer', 'wrong']);
    assert.deepEqual(bad, { opened: false, error: true });
    const none = await openSocket(page, ws('/ws/echo'), []);
    assert.deepEqual(none, { opened: false, error: true });
    // Chromium reports why each handshake failed (its console messages arrive on their own):
    // a 401 with `WWW-Authenticate` reads "HTTP Authentication failed". The page's own chat
    // client, which offers no token, is refused on /ws/chat too.
    const refused = (path) => logged.filter((line) => line.includes(`${port}${path}' failed`)
      && /HTTP Authentication failed|response code: 401/.test(line)).length;
    await until(() => refused('/ws/chat') >= 2 && refused('/ws/echo') >= 1,
      () => `the 401s in the console: ${JSON.stringify(logged)}`);
    assert.deepEqual(await openEvents(page, `/events/chat?token=${TOKEN}`), { open: true });
    assert.deepEqual(await openEvents(page, '/events/chat?token=wrong'), { open: false, closed: true });
  } finally {
    await page.close();
    await stop(server);
  }
}
