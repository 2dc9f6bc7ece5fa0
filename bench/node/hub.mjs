// A Node `ws` hub: every message on /ws/chat goes to every client, the sender included.
// Listens on HOST:PORT (127.0.0.1:0 by default) and logs "node-ws listening on http://ADDR/".
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({
  host: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 0),
  path: '/ws/chat',
  perMessageDeflate: false,
  maxPayload: 512 * 1024,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(data, { binary: isBinary });
    }
  });
});

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`node-ws listening on http://${address}:${port}/`);
});
