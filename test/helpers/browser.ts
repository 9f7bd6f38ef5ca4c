// Drives Debian's Chromium (scripts/install-test-deps-ui.sh) with playwright-core for
// console tests that need to type and click; the flags keep it off the network.
import { chromium as pw, type Browser } from 'playwright-core';
import { findChromium } from './chromium.js';

export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium();
  if (executablePath === null) throw new Error('chromium not found on PATH: run scripts/install-test-deps-ui.sh (apt-get install chromium)');
  return pw.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
