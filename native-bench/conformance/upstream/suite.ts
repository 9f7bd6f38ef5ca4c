// Runs the upstream-side vectors through one proxy: per vector one client connection
// asks for `/<tag>`, reads the answer with a strict parser, then asks `/<tag>/next` on
// the same connection when it is still open. Each result is judged against the
// vector's class; a `SMUGGLED-` body anywhere (on any vector's connection) fails the
// vector whose tag it carries.
import { connect } from 'node:net';
import { startMalformedUpstream, nextBody, type MalformedUpstream } from './malformed-upstream.js';
import { mark, responseTag, RESPONSE_VECTORS, type ResponseExpected, type ResponseVector } from './responses.js';

export interface ClientResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** the message ended where its framing says (not cut by a close) */
  readonly complete: boolean;
}

export interface Exchange {
  /** the final response, or null when the connection closed (or timed out) before a whole head */
  readonly response: ClientResponse | null;
  readonly closed: boolean;
  /** every byte the client received on this connection, latin1 */
  readonly raw: string;
  readonly timedOut: boolean;
}

export type Verdict = 'forwarded' | 'repaired' | 'bad-gateway' | 'closed-incomplete' | 'closed-empty' | 'forwarded-flawed' | 'altered' | 'desync' | 'timeout';

export interface ResponseResult {
  readonly vector: ResponseVector;
  readonly tag: string;
  readonly first: Exchange;
  /** the follow-up on the same connection; null when the connection was closed after the first */
  readonly next: Exchange | null;
  readonly verdict: Verdict;
  readonly pass: boolean;
  readonly detail: string;
}

/** Parses one response from `data`; null while incomplete (or unparseable), with `eof` ending a close-delimited body. */
export function parseClientResponse(data: string, method: string, eof: boolean): { response: ClientResponse; rest: string } | null {
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end === -1) return null;
    const head = data.slice(at, end + 2);
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(head);
    if (!m) return null;
    const status = Number(m[1]);
    let p = end + 4;
    if (status < 200) {
      at = p;
      continue;
    }
    const noBody = method === 'HEAD' || status === 204 || status === 304;
    const te = /\r\ntransfer-encoding:[ \t]*([^\r]*)/i.exec(head)?.[1];
    const clm = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r/i.exec(head);
    if (noBody) return { response: { status, head, body: '', complete: true }, rest: data.slice(p) };
    if (te !== undefined && /chunked\s*$/i.test(te)) {
      let body = '';
      for (;;) {
        const le = data.indexOf('\r\n', p);
        if (le === -1) return eof ? { response: { status, head, body, complete: false }, rest: '' } : null;
        const size = parseInt(data.slice(p, le).split(';')[0]!.trim(), 16);
        if (!Number.isFinite(size)) return { response: { status, head, body, complete: false }, rest: '' };
        if (size === 0) {
          const te2 = data.indexOf('\r\n\r\n', le);
          if (te2 === -1) return eof ? { response: { status, head, body, complete: false }, rest: '' } : null;
          return { response: { status, head, body, complete: true }, rest: data.slice(te2 + 4) };
        }
        if (data.length < le + 2 + size + 2) return eof ? { response: { status, head, body: body + data.slice(le + 2), complete: false }, rest: '' } : null;
        body += data.slice(le + 2, le + 2 + size);
        p = le + 2 + size + 2;
      }
    }
    if (clm) {
      const n = Number(clm[1]);
      if (data.length < p + n) return eof ? { response: { status, head, body: data.slice(p), complete: false }, rest: '' } : null;
      return { response: { status, head, body: data.slice(p, p + n), complete: true }, rest: data.slice(p + n) };
    }
    return eof ? { response: { status, head, body: data.slice(p), complete: true }, rest: '' } : null;
  }
}

function exchange(port: number, requests: readonly { method: string; text: string }[], timeoutMs: number): Promise<Exchange[]> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const out: Exchange[] = [];
    let data = '';
    let raw = '';
    let i = 0;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (timedOut: boolean): void => {
      clearTimeout(timer);
      if (i < requests.length && out.length === i) {
        const parsed = parseClientResponse(data, requests[i]!.method, true);
        out.push({ response: parsed?.response ?? null, closed, raw, timedOut });
      }
      socket.destroy();
      resolve(out);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => done(true), timeoutMs);
    };
    const send = (): void => {
      data = '';
      socket.write(requests[i]!.text, 'latin1');
      arm();
    };
    socket.on('connect', send);
    socket.on('data', (d: Buffer) => {
      const s = d.toString('latin1');
      raw += s;
      if (i >= requests.length) {
        if (out.length > 0) out[out.length - 1] = { ...out[out.length - 1]!, raw };
        return;
      }
      data += s;
      const parsed = parseClientResponse(data, requests[i]!.method, false);
      if (parsed === null) return;
      const closes = /\r\nconnection:[ \t]*close/i.test(parsed.response.head);
      out.push({ response: parsed.response, closed: false, raw, timedOut: false });
      i++;
      if (i >= requests.length || closes) {
        // Watch briefly for bytes behind the answer (a second, smuggled response).
        clearTimeout(timer);
        timer = setTimeout(() => done(false), 150);
        i = requests.length;
        return;
      }
      send();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      if (out.length > 0) out[out.length - 1] = { ...out[out.length - 1]!, closed: true, raw };
      done(false);
    });
  });
}

function judge(v: ResponseVector, tag: string, first: Exchange, next: Exchange | null): { verdict: Verdict; pass: boolean; detail: string } {
  const r = first.response;
  const allowed: Record<ResponseExpected, readonly Verdict[]> = {
    intact: ['forwarded'],
    reject: ['bad-gateway', 'closed-incomplete', 'closed-empty'],
    repair: ['bad-gateway', 'repaired', 'forwarded'],
    abort: ['bad-gateway', 'closed-incomplete'],
    trailing: ['bad-gateway', 'closed-incomplete', 'forwarded'],
  };
  const verdictOf = (): { verdict: Verdict; detail: string } => {
    if (next !== null && next.response !== null && next.response.body !== nextBody(tag)) return { verdict: 'desync', detail: `the follow-up on the same connection was answered ${JSON.stringify(next.response.body.slice(0, 60))}` };
    if (r === null) return first.timedOut ? { verdict: 'timeout', detail: 'no answer before the deadline' } : { verdict: 'closed-empty', detail: 'closed without a response' };
    if (!r.complete) return { verdict: 'closed-incomplete', detail: `status ${r.status}, then closed before the message completed` };
    if (r.status === 502) return r.body.includes(mark(tag)) ? { verdict: 'forwarded-flawed', detail: '502 carrying the upstream body' } : { verdict: 'bad-gateway', detail: '502' };
    const wantBody = v.body?.(tag);
    if (r.status !== v.status || (wantBody !== undefined && r.body !== wantBody)) return { verdict: 'altered', detail: `status ${r.status}, body ${JSON.stringify(r.body.slice(0, 60))}` };
    if (v.checkHead) {
      const flaw = v.checkHead(r.head);
      return flaw === null ? { verdict: v.expected === 'repair' ? 'repaired' : 'forwarded', detail: 'forwarded with the flaw removed' } : { verdict: 'forwarded-flawed', detail: flaw };
    }
    return { verdict: 'forwarded', detail: `status ${r.status}` };
  };
  const smuggled = /SMUGGLED-/.test(first.raw) || (next !== null && /SMUGGLED-/.test(next.raw));
  if (smuggled) return { verdict: 'desync', pass: false, detail: 'a smuggled response reached the client' };
  const { verdict, detail } = verdictOf();
  return { verdict, pass: allowed[v.expected].includes(verdict), detail };
}

export interface ResponseSuiteOptions {
  /** the proxy's port; it must forward every path to `upstreamPort` */
  readonly proxyPort: number;
  readonly upstream: MalformedUpstream;
  readonly run?: string;
  readonly vectors?: readonly ResponseVector[];
  readonly timeoutMs?: number;
  readonly concurrency?: number;
}

export async function runResponseSuite(o: ResponseSuiteOptions): Promise<ResponseResult[]> {
  const vectors = o.vectors ?? RESPONSE_VECTORS;
  const run = o.run ?? 'aa';
  const tags = vectors.map((v) => responseTag(run, RESPONSE_VECTORS.indexOf(v) >= 0 ? RESPONSE_VECTORS.indexOf(v) : vectors.indexOf(v)));
  vectors.forEach((v, i) => o.upstream.vectors.set(tags[i]!, v));
  const results: ResponseResult[] = new Array(vectors.length);
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < vectors.length) {
      const i = nextIndex++;
      const v = vectors[i]!;
      const tag = tags[i]!;
      const method = v.method ?? 'GET';
      const first = `${method} /${tag} HTTP/1.1\r\nHost: upstream-conformance.test\r\n${(v.requestFields ?? []).map((f) => f + '\r\n').join('')}\r\n`;
      const follow = `GET /${tag}/next HTTP/1.1\r\nHost: upstream-conformance.test\r\n\r\n`;
      const ex = await exchange(o.proxyPort, [{ method, text: first }, { method: 'GET', text: follow }], o.timeoutMs ?? 10_000);
      const a = ex[0] ?? { response: null, closed: true, raw: '', timedOut: false };
      const b = ex[1] ?? null;
      results[i] = { vector: v, tag, first: a, next: b, ...judge(v, tag, a, b) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 4, vectors.length) }, worker));
  // A smuggled body can surface on another vector's connection (pooled upstream
  // connections): it fails the vector whose tag it carries.
  for (const r of results) {
    for (const m of `${r.first.raw}${r.next?.raw ?? ''}`.matchAll(/SMUGGLED-(uc[a-z]{2}\d{4})/g)) {
      const j = tags.indexOf(m[1]!);
      if (j >= 0 && results[j]!.pass) results[j] = { ...results[j]!, verdict: 'desync', pass: false, detail: `its smuggled response reached the client of ${r.vector.id}` };
    }
  }
  return results;
}

export { startMalformedUpstream };
