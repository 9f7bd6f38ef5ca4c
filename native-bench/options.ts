// Command-line flags of `npm run bench`. Quick by default (the main comparison in
// under three minutes); --full is the whole matrix. Every dimension has a flag.
import { list, num, readFlags } from './flags.js';
import { cpus } from 'node:os';
import { isSizeName, SIZE_NAMES, type SizeName } from './bodies.js';
import { PEERS } from './peers/index.js';

export interface Options {
  full: boolean;
  peers: string[];
  /** sizes for keep-alive throughput */
  sizes: SizeName[];
  /** the size used for Connection: close runs, latency and the sweep */
  mainSize: SizeName;
  durationS: number;
  /** seconds per open-loop run (quick 2, full = durationS) */
  latencyDurationS: number;
  warmupS: number;
  repeats: number;
  connections: number;
  /** workers/threads of scalable peers in the main comparison */
  workers: number;
  /** worker counts of the sweep; empty = no sweep */
  sweep: number[];
  sweepPeers: string[];
  /** Connection: close runs */
  close: boolean;
  /** open-loop rates, percent of the lowest peer's max; empty = no latency runs */
  ratesPct: number[];
  /** curl samples per peer and size */
  verifySamples: number;
  /** profile tidegate (--cpu-prof) during one extra keep-alive run */
  profile: boolean;
  /** run scripts/install-bench-deps.sh when tools are missing */
  install: boolean;
  out: string | undefined;
  /** do not pin with taskset even when there are enough cores */
  noPin: boolean;
  /** tidegate's cli.js to run (default: the repo's dist/src/cli.js) */
  tidegateCli: string | undefined;
}

export const USAGE = `npm run bench -- [flags]
npm run bench -- --scenario overload [flags]   (its own flags: --scenario overload --help)

  --full                 the whole matrix: all sizes, Connection: close, rates 25/50/75/90 %,
                         worker sweep; default is the quick main comparison (≈3 min)
  --peers a,b,...        peers to run (default all but opt-in ones): ${PEERS.map((p) => (p.optIn ? `${p.name} (opt-in)` : p.name)).join(', ')}
  --sizes 0,1k,16k,256k  body sizes for keep-alive throughput (quick: 1k)
  --main-size SIZE       size for close/latency/sweep runs (default 1k)
  --duration S           seconds per measured run (quick 3, full 5)
  --latency-duration S   seconds per open-loop run (quick 2, full: --duration)
  --warmup S             seconds of warm-up before every measured run (quick 1, full 2)
  --repeats N            measured runs per point; medians are reported (default 3)
  --connections N        wrk connections (default 64)
  --workers N            workers/threads of nginx, HAProxy, tidegate (default: the proxy's cores)
  --sweep 1,2,4          worker counts for the sweep (full: 1,2,4… up to the cores present)
  --sweep-peers a,b      peers in the sweep (default tidegate,nginx,haproxy)
  --rates 25,50          open-loop rates, % of the lowest peer's max (quick 50; full 25,50,75,90)
  --close / --no-close   Connection: close runs (full: on)
  --no-latency           skip open-loop runs;  --no-sweep  skip the sweep
  --verify N             curl body checks per peer and size (default 5)
  --profile              also profile tidegate with --cpu-prof (summary in the results)
  --install              install missing tools with scripts/install-bench-deps.sh
  --no-pin               never pin with taskset
  --tidegate PATH        tidegate cli.js to measure (default dist/src/cli.js of this repo)
  --out DIR              results folder (default native-bench/results/<timestamp>)`;


export function sweepDefault(maxCores: number): number[] {
  const out: number[] = [];
  for (let w = 1; w < maxCores; w *= 2) out.push(w);
  out.push(maxCores);
  return [...new Set(out)];
}

export function parseOptions(argv: string[], proxyCores: number): Options {
  const full = argv.includes('--full');
  const o: Options = {
    full,
    peers: PEERS.filter((p) => !p.optIn).map((p) => p.name),
    sizes: full ? [...SIZE_NAMES] : ['1k'],
    mainSize: '1k',
    durationS: full ? 5 : 3,
    latencyDurationS: NaN,
    warmupS: full ? 2 : 1,
    repeats: 3,
    connections: 64,
    workers: proxyCores,
    sweep: full ? sweepDefault(cpus().length) : [],
    sweepPeers: ['tidegate', 'nginx', 'haproxy'],
    close: full,
    ratesPct: full ? [25, 50, 75, 90] : [50],
    verifySamples: 5,
    profile: false,
    install: false,
    out: undefined,
    noPin: false,
    tidegateCli: undefined,
  };
  for (const { flag, value } of readFlags(argv)) {
    switch (flag) {
      case '--full':
        break;
      case '--peers':
        o.peers = list(value());
        break;
      case '--sizes':
        o.sizes = list(value()).map((s) => {
          if (!isSizeName(s)) throw new Error(`--sizes: unknown size "${s}" (known: ${SIZE_NAMES.join(', ')})`);
          return s;
        });
        break;
      case '--main-size': {
        const s = value();
        if (!isSizeName(s)) throw new Error(`--main-size: unknown size "${s}"`);
        o.mainSize = s;
        break;
      }
      case '--duration':
        o.durationS = num(flag, value(), 1);
        break;
      case '--latency-duration':
        o.latencyDurationS = num(flag, value(), 1);
        break;
      case '--warmup':
        o.warmupS = num(flag, value(), 0);
        break;
      case '--repeats':
        o.repeats = num(flag, value(), 1);
        break;
      case '--connections':
        o.connections = num(flag, value(), 1);
        break;
      case '--workers':
        o.workers = num(flag, value(), 1);
        break;
      case '--sweep':
        o.sweep = list(value()).map((v) => num(flag, v, 1));
        break;
      case '--sweep-peers':
        o.sweepPeers = list(value());
        break;
      case '--rates':
        o.ratesPct = list(value()).map((v) => num(flag, v, 1));
        break;
      case '--close':
        o.close = true;
        break;
      case '--no-close':
        o.close = false;
        break;
      case '--no-latency':
        o.ratesPct = [];
        break;
      case '--no-sweep':
        o.sweep = [];
        break;
      case '--verify':
        o.verifySamples = num(flag, value(), 0);
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--install':
        o.install = true;
        break;
      case '--no-pin':
        o.noPin = true;
        break;
      case '--tidegate':
        o.tidegateCli = value();
        break;
      case '--out':
        o.out = value();
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag "${flag}"\n\n${USAGE}`);
    }
  }
  for (const p of [...o.peers, ...o.sweepPeers]) {
    if (!PEERS.some((d) => d.name === p)) throw new Error(`unknown peer "${p}" (known: ${PEERS.map((d) => d.name).join(', ')})`);
  }
  // close, latency and the sweep use the main size; its keep-alive max is the latency base
  const mainGiven = argv.some((a) => a === '--main-size' || a.startsWith('--main-size='));
  if (!o.sizes.includes(o.mainSize)) {
    if (mainGiven) o.sizes.push(o.mainSize);
    else o.mainSize = o.sizes[0]!;
  }
  if (Number.isNaN(o.latencyDurationS)) o.latencyDurationS = full ? o.durationS : Math.min(2, o.durationS);
  return o;
}
