// The primary's young generation during start-up. Loading the modules, validating and
// compiling the config and starting the first generation allocate tens of MiB that mostly
// survive a scavenge or two (module code, zod schemas, tables); V8 answers each surviving
// scavenge by doubling the young generation up to its 16 MiB semi-spaces, and keeps those
// ~20 MiB resident after start-up until its memory reducer shrinks them after about half
// a minute of idleness. With V8's growth factor at 1 until the gateway serves, the
// primary's young generation stays at its initial size through start-up (the start-up
// objects go to the old generation, where they belong anyway): the primary's heap
// reserves about 23 MiB idle instead of 57. The default factor comes back once the first
// generation serves, so how the young generation grows under load (and the workers')
// is V8's default. Someone who sets the factor themselves (NODE_OPTIONS or a node flag)
// keeps theirs: nothing here touches it then.
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
