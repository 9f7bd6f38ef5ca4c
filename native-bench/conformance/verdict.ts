// From what the client saw and what the upstream recorded to one verdict per vector.
import type { ProbeResult } from './probe.js';
import type { UpstreamParseError, UpstreamRequest } from './recording-upstream.js';
import type { Expected, SentRequest, Vector } from './vectors.js';

export type Verdict = 'rejected' | 'closed' | 'forwarded' | 'partial' | 'desync' | 'open' | 'timeout';

export const VERDICT_LEGEND: Readonly<Record<Verdict, string>> = {
  rejected: 'answered 4xx/5xx and closed the connection; nothing forwarded',
  closed: 'closed the connection without an answer; nothing forwarded',
  forwarded: 'every request the client sent arrived at the upstream once, complete (and intact, for valid or repairable requests), and was answered',
  partial: 'some of the requests sent were forwarded and answered, then the connection closed (e.g. a pipelined second request refused)',
  desync: 'the upstream saw a request the client did not send as one (e.g. /smuggled, or a body turned into a request), a body altered in transit, or the client got more answers than it sent requests',
  open: 'answered 4xx/5xx but left the connection open past the bound: the bytes behind the rejected head may be read as a request',
  timeout: 'neither answered nor closed within the bound',
};

/** Does the result meet what the RFC asks for this vector? */
export function passes(expected: Expected, j: Judgement): boolean {
  return conforms(expected, j.verdict) && j.findings.length === 0;
}

/** Which verdicts satisfy each expected class. */
export function conforms(expected: Expected, verdict: Verdict): boolean {
  switch (expected) {
    case 'forward':
      return verdict === 'forwarded';
    case 'reject':
      return verdict === 'rejected' || verdict === 'closed';
    case 'either':
      return verdict === 'forwarded' || verdict === 'rejected' || verdict === 'closed';
  }
}

export interface Judgement {
  readonly verdict: Verdict;
  /** the status of the first answer, if any */
  readonly status: number | null;
  readonly closedAfterMs: number | null;
  /** why, in a few words, when the verdict alone does not say it */
  readonly notes: string[];
  /**
   * what a forwarded copy got wrong without being a desync (a NUL still in a value,
   * both framing fields passed on); any finding makes the vector non-conforming
   */
  readonly findings: string[];
}

function normalisedPath(target: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(target);
  return m ? (m[1] ?? '/') : target;
}

function matches(sent: SentRequest, got: UpstreamRequest): boolean {
  return sent.method.toLowerCase() === got.method.toLowerCase() && sent.path === normalisedPath(got.target);
}

export function judge(vector: Vector, tag: string, probe: ProbeResult, seen: readonly UpstreamRequest[], parseErrors: readonly UpstreamParseError[]): Judgement {
  const notes: string[] = [];
  const findings: string[] = [];
  const sent = vector.requests(tag);
  const status = probe.responses[0]?.status ?? null;
  const base = { status, closedAfterMs: probe.closedAfterMs, notes, findings };
  if (probe.connectError) return { ...base, verdict: 'timeout', notes: [`connect failed: ${probe.connectError}`] };

  const unsent = seen.filter((r) => !sent.some((s) => matches(s, r)));
  const arrivals = sent.map((s) => seen.filter((r) => matches(s, r)));
  const mustBeIntact = vector.expected !== 'reject';
  for (const r of unsent) notes.push(`upstream got ${r.method} ${r.target}`);
  for (const e of parseErrors) notes.push(`upstream could not parse what it got: ${e.error}`);
  arrivals.forEach((a, i) => {
    if (a.length > 1) notes.push(`${sent[i]!.path} arrived ${a.length} times`);
  });
  if (probe.responses.length > sent.length) notes.push(`${probe.responses.length} answers to ${sent.length} request(s)`);
  const altered = mustBeIntact
    ? arrivals.flatMap((a, i) => a.filter((r) => r.complete && r.body.toString('latin1') !== sent[i]!.body).map((r) => `${sent[i]!.path} body ${JSON.stringify(r.body.toString('latin1').slice(0, 60))} != sent ${JSON.stringify(sent[i]!.body)}`))
    : [];
  notes.push(...altered);
  if (unsent.length > 0 || parseErrors.length > 0 || arrivals.some((a) => a.length > 1) || probe.responses.length > sent.length || altered.length > 0) {
    return { ...base, verdict: 'desync' };
  }

  const complete = arrivals.map((a) => a.some((r) => r.complete));
  const heads = arrivals.filter((a) => a.length > 0).length;
  if (heads > complete.filter(Boolean).length) notes.push('the upstream got a head without its whole body');
  if (vector.checkForwarded) {
    for (const a of arrivals) for (const r of a) {
      const finding = vector.checkForwarded(r.fields);
      if (finding) findings.push(finding);
    }
  }
  for (const a of arrivals) for (const r of a) if (r.ambiguous) findings.push('forwarded with both Content-Length and Transfer-Encoding');
  if (vector.mustClose && complete.some(Boolean) && !probe.closed) findings.push('left the connection open after answering a request with both Content-Length and Transfer-Encoding');

  const forwardedAll = complete.every(Boolean);
  const answered = probe.responses.length >= sent.length && probe.responses.slice(0, sent.length).every((r) => r.status < 400);
  const anyForwarded = complete.some(Boolean);
  if (vector.expected === 'reject' && anyForwarded) return { ...base, verdict: 'forwarded' };
  if (forwardedAll && answered) return { ...base, verdict: 'forwarded' };
  if (anyForwarded) {
    notes.push(`${complete.filter(Boolean).length}/${sent.length} forwarded, ${probe.responses.length} answered`);
    return { ...base, verdict: probe.closed ? 'partial' : 'timeout' };
  }
  if (status !== null && status >= 400) return { ...base, verdict: probe.closed ? 'rejected' : 'open' };
  if (status !== null) {
    notes.push(`answered ${status} without forwarding`);
    return { ...base, verdict: probe.closed ? 'partial' : 'timeout' };
  }
  if (probe.trailing.length > 0) notes.push(`unparseable answer ${JSON.stringify(probe.trailing.slice(0, 80))}`);
  return { ...base, verdict: probe.closed ? 'closed' : 'timeout' };
}
