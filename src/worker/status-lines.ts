import { STATUS_CODES } from 'node:http';

// "404 Not Found" for every code, built once: writeStatus is on the hot path.
const lines: string[] = [];
for (let code = 100; code < 600; code++) lines[code] = `${code} ${STATUS_CODES[code] ?? 'Unknown'}`;

export function statusLine(code: number): string {
  return lines[code] ?? `${code} Unknown`;
}
