// CPU time and memory of a process tree from /proc (Linux only). A tree, because nginx
// and the upstream do their work in child processes; tidegate's worker threads are
// counted in its own /proc/<pid>/stat already (utime/stime cover all threads).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** pid → ppid for every process now */
function parentMap(): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // field 2 (comm) may contain spaces and parentheses: parse after the last ')'
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      m.set(Number(e), Number(rest[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  return m;
}

export function processTree(root: number): number[] {
  const parents = parentMap();
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid);
  }
  return out;
}

export interface TreeSample {
  /** user + system CPU seconds of every process in the tree */
  cpuSeconds: number;
  /** sum of VmRSS, bytes */
  rssBytes: number;
  processes: number;
}

export function sampleTree(root: number): TreeSample {
  let ticks = 0;
  let rssKb = 0;
  let processes = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // after ')' : state(0) ppid(1) … utime is field 14 overall → index 11 here, stime 12
      ticks += Number(rest[11]) + Number(rest[12]);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m) rssKb += Number(m[1]);
      processes++;
    } catch {
      /* exited meanwhile */
    }
  }
  return { cpuSeconds: ticks / ticksPerSecond(), rssBytes: rssKb * 1024, processes };
}
