// Which side of a split route a request goes to: the first side whose header rule
// matches, else the side its draw falls in under the weights workers read from the
// shared split row (src/shm/split-table.ts). The draw is random per request, or for a
// sticky route a hash of the caller's key, so a caller stays on its side while the
// weights hold, and stays on the canary as the canary's weight rises (the threshold
// comparison is monotone in the weight; see split-table.ts). No allocation unless the
// key is a cookie (one slice) or a forwarded client address.
import { hash32 } from '../balancers/hash.js';
import { kSplitScale } from '../shm/layout.js';
import type { SplitTable } from '../shm/split-table.js';
import type { WorkerSplit } from '../messages.js';
import { cookieValue, findHeader } from './upstream-set.js';

/** The side index (into split.sides) for a request with these forwarded headers; `client` is the client address after trusted proxies. */
export function chooseSide(table: SplitTable, split: WorkerSplit, headers: readonly string[], client: string): number {
  const rules = split.rules;
  for (let r = 0; r < rules.length; r++) {
    const rule = rules[r]!;
    const h = rule.headers;
    let all = true;
    for (let i = 0; i < h.length; i += 2) {
      if (findHeader(headers, h[i]!) !== h[i + 1]) {
        all = false;
        break;
      }
    }
    if (all) return rule.side;
  }
  return table.pick(split.row, draw(split, headers, client), split.sides.length);
}

/** x in [0, kSplitScale): the caller's hash when the route is sticky and the key is present, else random. */
function draw(split: WorkerSplit, headers: readonly string[], client: string): number {
  const sticky = split.sticky;
  if (sticky !== null) {
    let key: string | null = null;
    if (sticky.on === 'client-ip') key = client;
    else if (sticky.on === 'header') key = findHeader(headers, sticky.name);
    else {
      const c = findHeader(headers, 'cookie');
      key = c === null ? null : cookieValue(c, sticky.name);
    }
    // 32-bit hash → the top 20 bits: uniform over the thresholds' scale.
    if (key !== null) return hash32(key) >>> 12;
  }
  return (Math.random() * kSplitScale) | 0;
}
