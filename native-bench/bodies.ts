// The fixed response bodies the upstream serves, and their checksums, so a sample of
// every peer's responses can be verified byte for byte.
import { createHash } from 'node:crypto';

export const SIZES = { '0': 0, '1k': 1024, '16k': 16 * 1024, '256k': 256 * 1024 } as const;
export type SizeName = keyof typeof SIZES;
export const SIZE_NAMES = Object.keys(SIZES) as SizeName[];

// Letters and digits only: the 1 KiB body is written inline in nginx.conf (`return 200 "…"`)
// where `$`, quotes and backslashes would mean something.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function body(size: SizeName): Buffer {
  const n = SIZES[size];
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = ALPHABET.charCodeAt((i * 7 + (i >> 6)) % ALPHABET.length);
  return b;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function isSizeName(s: string): s is SizeName {
  return Object.hasOwn(SIZES, s);
}
