// Free loopback ports: ask the kernel for an ephemeral one, close it, hand it on.
// A small race remains (another process could take it); peers that fail to bind say so.
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
