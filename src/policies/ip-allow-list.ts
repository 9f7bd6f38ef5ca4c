// CIDR membership, for trusted proxies (proxy.trustedProxies) and the ip-access
// policy. Addresses are compared as 128-bit values split into two 64-bit halves; IPv4
// is mapped into ::ffff:0:0/96 so one code path serves both families (and
// "::ffff:10.0.0.1" equals "10.0.0.1"). A list is immutable once built.
import { isIPv4, isIPv6 } from 'node:net';

interface Cidr {
  readonly hi: bigint;
  readonly lo: bigint;
  readonly maskHi: bigint;
  readonly maskLo: bigint;
}

const ALL64 = (1n << 64n) - 1n;

function toBig(ip: string): [bigint, bigint] | null {
  if (isIPv4(ip)) {
    const p = ip.split('.').map(Number);
    const v4 = (BigInt(p[0]!) << 24n) | (BigInt(p[1]!) << 16n) | (BigInt(p[2]!) << 8n) | BigInt(p[3]!);
    return [0n, (0xffffn << 32n) | v4];
  }
  if (!isIPv6(ip)) return null;
  let addr = ip;
  const zone = addr.indexOf('%');
  if (zone !== -1) addr = addr.slice(0, zone);
  let tail: number[] = [];
  const lastColon = addr.lastIndexOf(':');
  const maybeV4 = addr.slice(lastColon + 1);
  if (isIPv4(maybeV4)) {
    const p = maybeV4.split('.').map(Number);
    tail = [(p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!];
    addr = addr.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = addr.split('::') as [string, string | undefined];
  const a = head ? head.split(':') : [];
  const b = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? a : [...a, ...Array(8 - a.length - b.length).fill('0'), ...b];
  const words = groups.map((g) => parseInt(g, 16));
  if (tail.length) words.splice(6, 2, tail[0]!, tail[1]!);
  let hi = 0n;
  let lo = 0n;
  for (let i = 0; i < 4; i++) hi = (hi << 16n) | BigInt(words[i]!);
  for (let i = 4; i < 8; i++) lo = (lo << 16n) | BigInt(words[i]!);
  return [hi, lo];
}

function mask(bits: number): [bigint, bigint] {
  const hiBits = Math.min(bits, 64);
  const loBits = Math.max(bits - 64, 0);
  const maskHi = hiBits === 0 ? 0n : (ALL64 << BigInt(64 - hiBits)) & ALL64;
  const maskLo = loBits === 0 ? 0n : (ALL64 << BigInt(64 - loBits)) & ALL64;
  return [maskHi, maskLo];
}

export class IpAllowList {
  private readonly cidrs: Cidr[] = [];
  private readonly cache = new Map<string, boolean>();

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bitsRaw] = e.split('/');
      const v = toBig(addr!);
      if (!v) throw new Error(`invalid address in allow list: ${e}`);
      const bits = bitsRaw === undefined ? 128 : isIPv4(addr!) ? Number(bitsRaw) + 96 : Number(bitsRaw);
      const [maskHi, maskLo] = mask(bits);
      this.cidrs.push({ hi: v[0] & maskHi, lo: v[1] & maskLo, maskHi, maskLo });
    }
  }

  get empty(): boolean {
    return this.cidrs.length === 0;
  }

  has(ip: string): boolean {
    if (this.cidrs.length === 0) return false;
    const hit = this.cache.get(ip);
    if (hit !== undefined) return hit;
    const v = toBig(ip);
    let found = false;
    if (v) {
      for (const c of this.cidrs) {
        if ((v[0] & c.maskHi) === c.hi && (v[1] & c.maskLo) === c.lo) {
          found = true;
          break;
        }
      }
    }
    // Bounded: peers are few in practice, but a scan must not grow memory forever.
    if (this.cache.size > 4096) this.cache.clear();
    this.cache.set(ip, found);
    return found;
  }
}
