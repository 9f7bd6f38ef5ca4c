// deploy/kubernetes against the Kubernetes OpenAPI schemas (kubernetes-models ships
// validators generated from them) and the KEDA and Prometheus Operator CRD schemas
// (@kubernetes-models/keda, @kubernetes-models/prometheus-operator); the gateway
// config inside the ConfigMap against tidegate's own schema; and the numbers that
// must agree across files (drain vs grace period, HPA vs KEDA vs adapter rule).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse } from 'yaml';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { validateConfig } from '../../src/config/load.js';
import { hpaDesired } from '../../src/metrics/scaling.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIR = join(ROOT, 'deploy', 'kubernetes');

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };

/** apiVersion/kind → a validator generated from the published schema */
const validators: Record<string, (doc: Manifest) => void> = {
  'v1/Namespace': (d) => new Namespace(d as never).validate(),
  'v1/ConfigMap': (d) => new ConfigMap(d as never).validate(),
  'v1/Service': (d) => new Service(d as never).validate(),
  'apps/v1/Deployment': (d) => new Deployment(d as never).validate(),
  'policy/v1/PodDisruptionBudget': (d) => new PodDisruptionBudget(d as never).validate(),
  'autoscaling/v2/HorizontalPodAutoscaler': (d) => new HorizontalPodAutoscaler(d as never).validate(),
  'keda.sh/v1alpha1/ScaledObject': (d) => new ScaledObject(d as never).validate(),
  'monitoring.coreos.com/v1/ServiceMonitor': (d) => new ServiceMonitor(d as never).validate(),
};

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : n.endsWith('.yaml') ? [p] : [];
  });
}

/** Kubernetes objects by kind, from every manifest file (kustomizations and the adapter rules are not objects). */
function manifests(): Map<string, Manifest> {
  const out = new Map<string, Manifest>();
  for (const file of yamlFiles(DIR)) {
    const rel = relative(DIR, file);
    if (rel.endsWith('kustomization.yaml') || rel.startsWith('prometheus-adapter')) continue;
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const m = doc.toJS() as Manifest;
      out.set(m.kind, m);
    }
  }
  return out;
}

test('kubernetes: every manifest validates against the schema of its apiVersion and kind', () => {
  const all = manifests();
  assert.deepEqual([...all.keys()].sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PodDisruptionBudget', 'ScaledObject', 'Service', 'ServiceMonitor']);
  for (const m of all.values()) {
    const v = validators[`${m.apiVersion}/${m.kind}`];
    assert.ok(v !== undefined, `no schema for ${m.apiVersion} ${m.kind}`);
    assert.doesNotThrow(() => v(m), `${m.kind} ${m.metadata.name}`);
  }
  // The validators do reject a wrong type (they are not a pass-through).
  const bad = structuredClone(all.get('Deployment')!) as unknown as { spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } } };
  bad.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'eighty';
  assert.throws(() => validators['apps/v1/Deployment']!(bad as unknown as Manifest), /containerPort must be integer/);
});

test('kubernetes: the kustomizations list every manifest, and the KEDA overlay replaces the HPA', () => {
  const k = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  const top = readdirSync(DIR).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml').sort();
  assert.deepEqual([...k.resources].sort(), top);
  const keda = parse(readFileSync(join(DIR, 'keda', 'kustomization.yaml'), 'utf8')) as { resources: string[]; patches: { patch: string }[] };
  assert.deepEqual(keda.resources, ['..', 'scaledobject.yaml']);
  const del = parse(keda.patches[0]!.patch) as Record<string, unknown>;
  assert.deepEqual(del, { $patch: 'delete', apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'tidegate' } });
});

test('kubernetes: the ConfigMap holds a valid gateway config, and the pod spec covers its drain', () => {
  const all = manifests();
  const cm = all.get('ConfigMap') as unknown as { data: Record<string, string> };
  const cfg = validateConfig(parse(cm.data['tidegate.yaml']!), { TIDEGATE_ADMIN_TOKEN: 'x'.repeat(32) });
  assert.equal(cfg.admin.port, 9901);
  assert.equal(cfg.listen.port, 8080);
  const pod = (all.get('Deployment') as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec as {
    terminationGracePeriodSeconds: number;
    containers: { ports: { name: string; containerPort: number }[]; readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string; port: string } }; lifecycle: { preStop: { exec: { command: string[] } } } }[];
  };
  const c = pod.containers[0]!;
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
  assert.equal(c.ports.find((p) => p.name === 'admin')?.containerPort, cfg.admin.port);
  assert.equal(c.ports.find((p) => p.name === 'http')?.containerPort, cfg.listen.port);
  const [cmd, secs] = c.lifecycle.preStop.exec.command;
  assert.equal(cmd, 'sleep');
  // preStop, then SIGTERM: the drain, then the gateway's own hard stop 5 s after it.
  const needed = Number(secs) + cfg.shutdown.drainTimeout / 1000 + 5;
  assert.ok(pod.terminationGracePeriodSeconds >= needed, `grace ${pod.terminationGracePeriodSeconds} s < preStop ${secs} s + drain ${cfg.shutdown.drainTimeout / 1000} s + 5 s`);
});

test('kubernetes: HPA, KEDA and the adapter rule scale on one metric and target, with the HPA arithmetic', () => {
  const all = manifests();
  const hpa = all.get('HorizontalPodAutoscaler') as unknown as { spec: { minReplicas: number; maxReplicas: number; metrics: { type: string; pods: { metric: { name: string }; target: { type: string; averageValue: string } } }[] } };
  const so = all.get('ScaledObject') as unknown as { spec: { minReplicaCount: number; maxReplicaCount: number; triggers: { type: string; metadata: { query: string; threshold: string } }[] } };
  const rules = parse(readFileSync(join(DIR, 'prometheus-adapter', 'rules.yaml'), 'utf8')) as { rules: { seriesQuery: string; name: { matches: string; as: string }; metricsQuery: string }[] };
  const m = hpa.spec.metrics[0]!;
  assert.equal(m.type, 'Pods');
  assert.equal(m.pods.target.type, 'AverageValue');
  const rule = rules.rules.find((r) => r.name.as === m.pods.metric.name);
  assert.ok(rule !== undefined, `an adapter rule serves ${m.pods.metric.name}`);
  const series = /^([a-z_]+)\{/.exec(rule.seriesQuery)?.[1];
  assert.equal(series, 'tidegate_upstream_request_rate');
  // The series is one the gateway exports.
  assert.match(readFileSync(join(ROOT, 'src', 'primary', 'observability.ts'), 'utf8'), new RegExp(`'${series}'`));
  const t = so.spec.triggers[0]!;
  assert.equal(t.type, 'prometheus');
  assert.match(t.metadata.query, new RegExp(`^sum\\(${series}\\{`));
  assert.equal(t.metadata.threshold, m.pods.target.averageValue);
  assert.equal(so.spec.minReplicaCount, hpa.spec.minReplicas);
  assert.equal(so.spec.maxReplicaCount, hpa.spec.maxReplicas);
  // The README's example: 3 pods at 900, 1200 and 1500 rps against 400 per pod. HPA's
  // ceil(3 × 1200 / 400) = 9; KEDA's ceil(3600 / 400) = 9; the gateway's recommender
  // (same formula, same ±10 % tolerance) agrees.
  const target = Number(m.pods.target.averageValue);
  assert.equal(hpaDesired(3, (900 + 1200 + 1500) / 3, target, 0.1), 9);
  assert.equal(Math.ceil((900 + 1200 + 1500) / target), 9);
  // Within the tolerance nothing moves: 3 pods at 420 rps (ratio 1.05).
  assert.equal(hpaDesired(3, 420, target, 0.1), 3);
});
