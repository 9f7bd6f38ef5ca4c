// Peer: fastify + @fastify/http-proxy (undici underneath), one process.
// usage: node fastify-proxy.js PORT UPSTREAM_URL
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [port, upstream] = process.argv.slice(2);
if (!port || !upstream) {
  console.error('usage: fastify-proxy PORT UPSTREAM_URL');
  process.exit(2);
}
const app = Fastify({ logger: false });
await app.register(proxy, { upstream, undici: { connections: 64, pipelining: 1 } });
await app.listen({ port: Number(port), host: '127.0.0.1' });
console.log(JSON.stringify({ event: 'started', port: Number(port) }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
