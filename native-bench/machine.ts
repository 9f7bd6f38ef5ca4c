// What machine this ran on, and which CPUs each side gets. With enough cores the load
// generator, the upstream and the proxy get disjoint CPU sets (taskset); on a small
// machine everything shares, and the report says so plainly.
import { readFileSync } from 'node:fs';
import { cpus, totalmem, release, hostname } from 'node:os';
import { run } from './processes.js';

export interface CpuPlan {
  pinned: boolean;
  cores: number;
  load: string | undefined;
  upstream: string | undefined;
  proxy: string | undefined;
  loadCores: number;
  upstreamCores: number;
  proxyCores: number;
  /** one sentence for the report */
  note: string;
}

function range(from: number, count: number): string {
  return count === 1 ? String(from) : `${from}-${from + count - 1}`;
}

/** CPUs this process may run on (respects cgroup/affinity limits), in order. */
function allowedCpus(): number[] {
  try {
    const m = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) {
      const out: number[] = [];
      for (const part of m[1]!.split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a!; c <= (b ?? a!); c++) out.push(c);
      }
      if (out.length) return out;
    }
  } catch {
    /* not Linux */
  }
  return cpus().map((_, i) => i);
}

export function planCpus(noPin: boolean): CpuPlan {
  const list = allowedCpus();
  const n = list.length;
  if (n < 3 || noPin) {
    return {
      pinned: false,
      cores: n,
      load: undefined,
      upstream: undefined,
      proxy: undefined,
      loadCores: n,
      upstreamCores: n,
      proxyCores: n,
      note:
        n < 3
          ? `Only ${n} core${n === 1 ? '' : 's'}: load generator, upstream nginx and the proxy under test all share ${n === 1 ? 'it' : `the same ${n} cores`} (no pinning possible), so every proxy competes with its own load for CPU. Ratios between peers are meaningful; absolute numbers are not what a dedicated host would show.`
          : `Pinning disabled (--no-pin): all processes share ${n} cores.`,
    };
  }
  const quarter = Math.max(1, Math.floor(n / 4));
  const loadCores = quarter;
  const upstreamCores = quarter;
  const proxyCores = n - loadCores - upstreamCores;
  // contiguous runs of allowed CPU ids (usually 0..n-1)
  const ids = (from: number, count: number): string => {
    const part = list.slice(from, from + count);
    return part.every((c, i) => i === 0 || c === part[i - 1]! + 1) ? range(part[0]!, part.length) : part.join(',');
  };
  const proxy = ids(0, proxyCores);
  const upstream = ids(proxyCores, upstreamCores);
  const load = ids(proxyCores + upstreamCores, loadCores);
  return {
    pinned: true,
    cores: n,
    load,
    upstream,
    proxy,
    loadCores,
    upstreamCores,
    proxyCores,
    note: `Pinned with taskset to disjoint CPU sets: proxy ${proxy} (${proxyCores} cores), upstream ${upstream}, load generator ${load}.`,
  };
}

export interface Machine {
  hostname: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  tools: Record<string, string>;
  loadAverageAtStart: number[];
}

async function toolVersion(cmd: string, args: string[], pick: (out: string) => string): Promise<string> {
  try {
    const r = await run(cmd, cmd, args, { timeoutMs: 5_000, allowFail: true });
    return pick((r.stdout + r.stderr).trim()) || 'unknown';
  } catch {
    return 'missing';
  }
}

export async function describeMachine(): Promise<Machine> {
  let os = 'unknown';
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* not Linux */
  }
  const la = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  return {
    hostname: hostname(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: allowedCpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os,
    node: process.version,
    tools: {
      wrk: await toolVersion('wrk', ['-v'], (o) => /wrk (\S+)/.exec(o)?.[1] ?? ''),
      h2load: await toolVersion('h2load', ['--version'], (o) => /nghttp2\/(\S+)/.exec(o)?.[1] ?? ''),
      curl: await toolVersion('curl', ['--version'], (o) => /curl (\S+)/.exec(o)?.[1] ?? ''),
      nginx: await toolVersion('nginx', ['-v'], (o) => /nginx\/(\S+)/.exec(o)?.[1] ?? ''),
      haproxy: await toolVersion('haproxy', ['-v'], (o) => /HAProxy version (\S+)/.exec(o)?.[1] ?? ''),
    },
    loadAverageAtStart: la,
  };
}

export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const [cmd, args] of [
    ['wrk', ['-v']],
    ['h2load', ['--version']],
    ['curl', ['--version']],
    ['nginx', ['-v']],
    ['haproxy', ['-v']],
  ] as const) {
    try {
      await run(cmd, cmd, [...args], { timeoutMs: 5_000, allowFail: true });
    } catch {
      missing.push(cmd);
    }
  }
  return missing;
}
