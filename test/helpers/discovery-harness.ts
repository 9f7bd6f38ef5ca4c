// A DiscoveryManager wired to a recording sink and a captured log, stopped (and its
// replayed API server closed) when the test ends.
import type { TestContext } from 'node:test';
import { DiscoveryManager } from '../../src/primary/discovery-manager.js';
import { endpointKey, type DiscoveredEndpoint } from '../../src/discovery/provider.js';
import { captureLog, type CapturedLog } from './log-capture.js';

export interface ManagerUnderTest {
  readonly mgr: DiscoveryManager;
  readonly cap: CapturedLog;
  /** every set the sink received, each as sorted keys */
  readonly sets: string[][];
}

export function managerUnderTest(t: TestContext, closeServer: () => unknown, key: (e: DiscoveredEndpoint) => string = endpointKey): ManagerUnderTest {
  const cap = captureLog();
  const sets: string[][] = [];
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints: (_u, eps) => sets.push((eps ?? []).map(key).sort()) } });
  t.after(async () => {
    await mgr.stop();
    await closeServer();
  });
  return { mgr, cap, sets };
}
