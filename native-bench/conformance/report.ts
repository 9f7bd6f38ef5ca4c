// Renders results: a terminal table, a Markdown table (one target or side by side),
// and a JSON document with the exact bytes of every vector.
import type { VectorResult } from './suite.js';
import { VERDICT_LEGEND, type Verdict } from './verdict.js';

/** "rejected 400", "closed 10.4 s", "forwarded", "desync" … plus "✗" when it does not conform. */
export function cell(r: VectorResult): string {
  let s: string = r.verdict;
  if ((r.verdict === 'rejected' || r.verdict === 'open') && r.status !== null) s += ` ${r.status}`;
  if (r.verdict === 'rejected' || r.verdict === 'closed' || r.verdict === 'partial') s += ` ${closeTime(r.closedAfterMs)}`;
  if (!r.pass) s += ' ✗';
  return s;
}

function closeTime(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? 'at once' : `${(ms / 1000).toFixed(0)} s`;
}

export function escapeBytes(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\xff\\]/g, (c) => {
    if (c === '\r') return '\\r';
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\\') return '\\\\';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

export function textTable(results: readonly VectorResult[]): string {
  const rows = results.map((r) => [r.vector.id, r.vector.expected, cell(r), [...r.findings, ...r.notes].join('; ')]);
  const head = ['vector', 'expected', 'verdict', 'notes'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (i === 3 ? 0 : row[i]!.length))));
  const fmt = (row: string[]): string => row.map((c, i) => (i === 3 ? c : c.padEnd(widths[i]!))).join('  ');
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

export function summary(results: readonly VectorResult[]): string {
  const counts = new Map<Verdict, number>();
  for (const r of results) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  const failed = results.filter((r) => !r.pass).length;
  return `${results.length} vectors: ${[...counts].map(([v, n]) => `${n} ${v}`).join(', ')}; ${results.length - failed} conform, ${failed} do not`;
}

export function legendMarkdown(): string {
  return [
    '| verdict | meaning |',
    '|---|---|',
    ...Object.entries(VERDICT_LEGEND).map(([v, m]) => `| \`${v}\` | ${m} |`),
    '',
    'Expected: `forward` — valid, must arrive intact; `reject` — must be refused (4xx/5xx or a close), nothing forwarded; `either` — the RFC lets the server reject it or repair and forward it. ✗ marks a result that does not meet the expectation.',
  ].join('\n');
}

export interface Column {
  readonly name: string;
  readonly results: readonly VectorResult[];
  /** footnote mark for some cells (e.g. tidegate's silent closes by uWS) */
  readonly mark?: (r: VectorResult) => string;
}

const md = (s: string): string => s.replace(/\|/g, '\\|');

/** vector | RFC | expected | one column per target */
export function markdownTable(columns: readonly Column[]): string {
  const first = columns[0]!.results;
  const lines = [`| vector | RFC | expected | ${columns.map((c) => c.name).join(' | ')} |`, `|---|---|---|${columns.map(() => '---|').join('')}`];
  first.forEach((r, i) => {
    const cells = columns.map((c) => {
      const x = c.results[i]!;
      return md(cell(x) + (c.mark?.(x) ?? ''));
    });
    lines.push(`| ${md(r.vector.name)} (\`${r.vector.id}\`) | ${r.vector.rfc} | ${r.vector.expected} | ${cells.join(' | ')} |`);
  });
  return lines.join('\n');
}

export function jsonReport(target: string, results: readonly VectorResult[]): unknown {
  return {
    target,
    summary: summary(results),
    results: results.map((r) => ({
      id: r.vector.id,
      name: r.vector.name,
      category: r.vector.category,
      rfc: r.vector.rfc,
      expected: r.vector.expected,
      verdict: r.verdict,
      pass: r.pass,
      status: r.status,
      closedAfterMs: r.closedAfterMs,
      reset: r.probe.reset,
      notes: r.notes,
      findings: r.findings,
      bytes: r.vector.parts(r.tag).map(escapeBytes),
      answers: r.probe.responses.map((x) => x.head.split('\r\n')[0]),
      upstream: r.seen.map((u) => ({ request: `${u.method} ${u.target} ${u.version}`, complete: u.complete, body: escapeBytes(u.body.subarray(0, 200).toString('latin1')) })),
    })),
  };
}
