// Calls to the admin API with a bearer token, and a token file with a read-only and a
// traffic token, for the tests of run-time control.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const READER = 'read-only-token-000000001';
export const OPS = 'traffic-token-00000000001';

export function tokenFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-tokens-'));
  const file = join(dir, 'tokens.yaml');
  writeFileSync(
    file,
    stringify({
      tokens: [
        { name: 'reader', token: READER, scopes: ['read'] },
        { name: 'ops', token: OPS, scopes: ['read', 'traffic'] },
      ],
    }),
  );
  return file;
}

export interface Json {
  [k: string]: unknown;
}

export async function api(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Json) : {} };
}

/** Requests counted by each worker (GET /status with a token). */
export async function perWorker(adminUrl: string, token: string): Promise<number[]> {
  return ((await api(adminUrl, 'GET', '/status', token)).json as { workers: { requests: number }[] }).workers.map((w) => w.requests);
}

export function assertBothServed(before: readonly number[], after: readonly number[]): void {
  assert.equal(after.length, 2);
  assert.ok(after.every((n, i) => n > (before[i] ?? 0)), `every worker must serve: before ${before.join(',')}, after ${after.join(',')}`);
}


export interface AlertSpec {
  readonly alertname: string;
  /** labels besides alertname */
  readonly labels: Record<string, string>;
  readonly summary: string;
  readonly fingerprint: string;
  readonly startsAt: string;
  /** endsAt of a resolved alert */
  readonly endsAt: string;
}

/** A webhook payload as Alertmanager (version 4) sends it: one group with one alert. */
export function alertmanagerPayload(status: 'firing' | 'resolved', a: AlertSpec): unknown {
  const labels = { alertname: a.alertname, ...a.labels };
  return {
    version: '4',
    groupKey: `{}:{alertname="${a.alertname}"}`,
    truncatedAlerts: 0,
    status,
    receiver: 'tidegate',
    groupLabels: { alertname: a.alertname },
    commonLabels: labels,
    commonAnnotations: { summary: a.summary },
    externalURL: 'http://alertmanager.example:9093',
    alerts: [
      {
        status,
        labels,
        annotations: { summary: a.summary },
        startsAt: a.startsAt,
        endsAt: status === 'resolved' ? a.endsAt : '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.example:9090/graph?g0.expr=…',
        fingerprint: a.fingerprint,
      },
    ],
  };
}
