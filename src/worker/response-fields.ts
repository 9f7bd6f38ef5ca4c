// The upstream's response fields as the client gets them (RFC 9110 §7.6.1): hop-by-hop
// fields dropped, including those the upstream's Connection lists, and the framing read,
// in one pass. The parser (upstream/response-parser.ts) already validated every name and
// value, so only names of the lengths below need a closer look, and a plain
// `Connection: keep-alive` / `close` (nearly every response) lists no field.

/** Where the pass leaves what it read (the exchange itself: no object per response). */
export interface ResponseFields {
  /** name, value pairs to send to the client */
  respHeaders: Buffer[] | null;
  /** the upstream's Via, which ours is appended to */
  respVia: string | null;
  /** Content-Length, -1 when absent */
  total: number;
  /** the upstream's Date value, a view of the head (the client gets uWS's own Date), null when absent */
  respDate: Buffer | null;
}

/** Whether `b` is `lower` (a lower-case ASCII name), ignoring case. */
export function fieldIs(b: Buffer, lower: string): boolean {
  const n = lower.length;
  if (b.length !== n) return false;
  for (let i = 0; i < n; i++) if ((b[i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Adds the field names a Connection value lists, lower-case, to `into` (RFC 9110 §7.6.1). */
export function addConnectionTokens(value: Buffer, into: Set<string>): void {
  for (const t of value.toString('latin1').split(',')) into.add(t.trim().toLowerCase());
}

export function readResponseFields(raw: Buffer[], into: ResponseFields): void {
  const out: Buffer[] = [];
  let listed: Set<string> | null = null;
  into.respDate = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 2:
        if (fieldIs(name, 'te')) continue;
        break;
      case 3:
        if (fieldIs(name, 'via')) {
          into.respVia = raw[i + 1]!.toString('latin1');
          continue;
        }
        break;
      case 4:
        if (fieldIs(name, 'date')) {
          into.respDate = raw[i + 1]!; // uWS always writes its own Date; the cache reads this one
          continue;
        }
        break;
      case 7:
        if (fieldIs(name, 'trailer') || fieldIs(name, 'upgrade')) continue;
        break;
      case 10:
        if (fieldIs(name, 'connection')) {
          const v = raw[i + 1]!;
          if (!fieldIs(v, 'keep-alive') && !fieldIs(v, 'close')) {
            addConnectionTokens(v, (listed ??= new Set()));
          }
          continue;
        }
        if (fieldIs(name, 'keep-alive')) continue;
        break;
      case 14:
        if (fieldIs(name, 'content-length')) {
          // digits only (response-parser.ts), so Number is exact
          into.total = Number(raw[i + 1]!.toString('latin1'));
          continue;
        }
        break;
      case 16:
        if (fieldIs(name, 'proxy-connection')) continue;
        break;
      case 17:
        if (fieldIs(name, 'transfer-encoding')) continue;
        break;
    }
    out.push(name, raw[i + 1]!);
  }
  if (listed === null) {
    into.respHeaders = out;
    return;
  }
  const kept: Buffer[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!listed.has(out[i]!.toString('latin1').toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  }
  into.respHeaders = kept;
}
