// Loads the uWebSockets.js native addon directly. The package's own entry point
// silently falls back to a pure-JS server (an order of magnitude slower) when the
// addon does not load; a gateway that quietly runs at a tenth of its speed is worse
// than one that refuses to start, so we never go through that entry point.
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';

export class UwsNativeMissingError extends Error {
  readonly code = 'TG_ERR_UWS_NATIVE_MISSING';
}

function glibcVersion(): string {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ?? 'unknown (not glibc?)';
}

export function loadUws(): typeof UWS {
  const require = createRequire(import.meta.url);
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    return require(`uWebSockets.js/binaries/${file}`) as typeof UWS;
  } catch (err) {
    throw new UwsNativeMissingError(
      `uWebSockets.js native addon ${file} did not load (platform ${process.platform}-${process.arch}, ` +
        `Node ABI ${process.versions.modules}, glibc ${glibcVersion()}): ${(err as Error).message.split('\n')[0]}. ` +
        'tidegate needs Linux x64/arm64 with Node 20 (ABI 115) and glibc >= 2.31; it refuses the slow JS fallback.',
    );
  }
}
