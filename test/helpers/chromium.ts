// Headless Chromium (Debian package `chromium`, installed by
// scripts/install-test-deps-ui.sh) for the admin console tests: the DOM after the
// page's script ran, and screenshots.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function findChromium(): string | null {
  for (const b of ['chromium', 'chromium-browser']) {
    const r = spawnSync('sh', ['-c', `command -v ${b}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() !== '') return r.stdout.trim();
  }
  return null;
}

function run(chromium: string, extra: string[], url: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'tidegate-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
    // Lets the page's timers run (and its fetches finish) before the DOM is dumped.
    '--virtual-time-budget=5000',
    ...extra,
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile(chromium, args, { timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export function dumpDom(chromium: string, url: string, width = 1280): Promise<string> {
  return run(chromium, [`--window-size=${width},1000`, '--dump-dom'], url);
}

/** Writes a PNG of the page at `width` × `height` CSS pixels. */
export async function screenshot(chromium: string, url: string, file: string, width: number, height: number): Promise<void> {
  await run(chromium, [`--window-size=${width},${height}`, `--screenshot=${file}`], url);
}
