// A small upstream for the demo: answers every request with JSON describing what it
// received (method, path, headers, body size), so a person can see what the gateway
// forwarded. Runs on loopback only.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startEchoUpstream(name: string, host = '127.0.0.1', port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      const body = JSON.stringify({ upstream: name, method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(port, host, r));
  return { server, port: (server.address() as AddressInfo).port };
}
