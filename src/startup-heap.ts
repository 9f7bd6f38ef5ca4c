// The primary's young generation during start-up. Loading the modules, validating and
// compiling the config and starting the first generation allocate tens of MiB that mostly
// survive a scavenge or two (module code, zod schemas, tables); V8 answers surviving
// scavenges by growing the young generation (by --semi-space-growth-factor, 2) up to its
// 16 MiB semi-spaces, and keeps those ~20 MiB resident after start-up until its memory
// reducer shrinks them after about half a minute of idleness. With the factor at 1 until
// the gateway serves, the primary's young generation is 2 MiB after start-up instead of
// 32 (v8.getHeapSpaceStatistics(); the start-up objects go to the old generation, where
// most of them belong anyway), and the primary's heap reserves about 23 MiB idle instead
// of 57 (scripts/measure-memory.mjs). The workers' young generations grow as before. The
// default factor comes back once the first generation serves, so under load every
// thread's young generation grows as V8 decides. Someone who sets the factor themselves
// (NODE_OPTIONS or a node flag) keeps theirs: nothing here touches it then.
import { setFlagsFromString } from 'node:v8';

/** V8's default --semi-space-growth-factor (`node --v8-options`) */
const kDefaultGrowthFactor = 2;

let active = false;

function setByOperator(): boolean {
  return process.execArgv.some((a) => a.includes('semi-space-growth-factor')) || (process.env.NODE_OPTIONS ?? '').includes('semi-space-growth-factor');
}

/** From the first line of the command line until endStartupHeap(). */
export function beginStartupHeap(): void {
  if (setByOperator()) return;
  setFlagsFromString('--semi-space-growth-factor=1');
  active = true;
}

/** Back to V8's default growth: the gateway serves (or the command is not the gateway). */
export function endStartupHeap(): void {
  if (!active) return;
  active = false;
  setFlagsFromString(`--semi-space-growth-factor=${kDefaultGrowthFactor}`);
}
