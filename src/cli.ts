#!/usr/bin/env node
// tidegate [--config FILE] [--check FILE] [--demo] | tidegate fault-upstream [flags]
// tidegate top [--admin URL] [--token T] [--once] (src/console/top.ts)
//   exit 0: ran and stopped cleanly (or the config checked out)
//   exit 2: the config is invalid (every error listed, with its path); nothing started
//   exit 1: anything else that stopped it from running
import { beginStartupHeap } from './startup-heap.js';

// Before anything else loads: start-up's allocations must not grow the primary's young
// generation (src/startup-heap.ts).
beginStartupHeap();
await import('./cli-main.js');
