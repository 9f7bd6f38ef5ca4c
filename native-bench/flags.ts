// Command-line flags for the bench's entry points: `--flag value` or `--flag=value`,
// read one at a time, so each parser is a switch over names and nothing else.

export interface Flag {
  /** the name as typed, without an `=value` part */
  readonly flag: string;
  /** the flag's value: the `=value` part, or the next argument (consumed) */
  value(): string;
  /** the value as a number ≥ min */
  num(min: number): number;
}

export function* readFlags(argv: readonly string[]): Generator<Flag> {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const inline = eq > 0 ? a.slice(eq + 1) : undefined;
    // `i` is this iteration's binding: advancing it here skips the consumed value.
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    yield { flag, value, num: (min) => num(flag, value(), min) };
  }
}

export function num(flag: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${flag}: expected a number ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function list(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}
