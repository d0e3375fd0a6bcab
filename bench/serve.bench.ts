// The guarded server's costs: input validation alone for one image, a whole prediction request over loopback, and
// 200 concurrent clients for 30 s. Serves a freshly initialised small CNN (the attestation check runs once at start
// and is not what is timed). Prints the table and appends it to bench/RESULTS.md. Run with `npm run bench:serve`.
import { appendFile, mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttackTarget } from '../engine/attacks/target.js';
import { FASHION_SQUEEZE } from '../engine/detect/squeeze.js';
import { TelemetryWriter } from '../engine/monitor/telemetry.js';
import { calibrateDetector } from '../serve/detector.js';
import { loadSplit } from '../engine/data/fashion.js';
import { Rng } from '../engine/runtime/rng.js';
import { deployableModel, initWeights, smallCnn } from '../engine/train/zoo.js';
import type { AttestedModel } from '../serve/attested-model.js';
import { createServer } from '../serve/server.js';
import { validateJson } from '../serve/validate.js';

const test = await loadSplit('/usr/share/datasets/fashion-mnist', 'test', { limit: 100 });
const image = (i: number) => Array.from(test.images.subarray(i * 784, (i + 1) * 784));
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const ms = (x: number) => `${x.toFixed(3)} ms`;

const spec = { shape: [1, 28, 28], range: [0, 1] as [number, number], maxBatch: 64 };
const bodies = Array.from({ length: 100 }, (_, i) => ({ inputs: [image(i)] }));
const validation: number[] = [];
for (let r = 0; r < 20_000; r++) {
  const t0 = performance.now();
  validateJson(bodies[r % 100], spec);
  if (r >= 2000) validation.push(performance.now() - t0);
}

const attested = {
  model: deployableModel(smallCnn, initWeights(smallCnn, new Rng(1))),
  sha256: '0'.repeat(64),
  pipeline: 'bench',
  policyName: 'bench',
} as AttestedModel;
const texts = bodies.map((b) => JSON.stringify(b));
/** One prediction request of one image over loopback: whether it was answered 200, and how long it took. */
async function requestAt(at: string, i: number): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(at, {
    method: 'POST',
    body: texts[i % 100],
    headers: { 'content-type': 'application/json' },
  });
  await res.arrayBuffer();
  return { ok: res.status === 200, ms: performance.now() - t0 };
}

/** Whole requests from one client, after 500 to warm up. */
async function sequentialMs(at: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const r = await requestAt(at, i);
    if (i >= 500) out.push(r.ms);
  }
  return out;
}

// The same model with the monitor's telemetry written and feature squeezing scoring every input.
const target = await AttackTarget.create(attested.model);
const calibration = await loadSplit('/usr/share/datasets/fashion-mnist', 'test', { limit: 1000 });
const detector = await calibrateDetector((x, n) => target.logits(x, n), calibration, {
  config: FASHION_SQUEEZE,
  fpr: 0.05,
  action: 'flag',
  range: [0, 1],
});
const telemetryDir = await mkdtemp(join(tmpdir(), 'secmlops-serve-bench-'));
const guarded = await createServer({
  attested,
  detector,
  telemetry: {
    writer: new TelemetryWriter(telemetryDir, 'serve-bench', { maxFileBytes: 16 << 20, files: 2 }),
    rawInputs: false,
  },
});
const guardedMs = await sequentialMs(`${await guarded.app.listen({ host: '127.0.0.1', port: 0 })}/v1/predict`);
await guarded.close();

const server = await createServer({ attested });
const url = `${await server.app.listen({ host: '127.0.0.1', port: 0 })}/v1/predict`;
const request = (i: number) => requestAt(url, i);
const sequential = await sequentialMs(url);
const load: number[] = [];
let errors = 0;
const until = performance.now() + 30_000;
await Promise.all(
  Array.from({ length: 200 }, async (_, c) => {
    for (let i = c; performance.now() < until; i += 200) {
      const r = await request(i).catch(() => ({ ok: false, ms: 0 }));
      if (r.ok) load.push(r.ms);
      else errors++;
    }
  }),
);
await server.close();

const rows = [
  ['input validation alone, batch 1 (18,000 runs)', ms(q(validation, 0.5)), ms(q(validation, 0.99)), '—'],
  ['whole request, batch 1, one client (2,500 requests)', ms(q(sequential, 0.5)), ms(q(sequential, 0.99)), '—'],
  [
    'the same with telemetry and feature squeezing (2 bits) on every input',
    ms(q(guardedMs, 0.5)),
    ms(q(guardedMs, 0.99)),
    '—',
  ],
  [
    `200 concurrent clients, 30 s (${load.length} requests, ${errors} errors)`,
    ms(q(load, 0.5)),
    ms(q(load, 0.99)),
    `${Math.round(load.length / 30)} req/s`,
  ],
];
const table = [['measure', 'p50', 'p99', 'throughput'], ['---', '---', '---', '---'], ...rows]
  .map((r) => `| ${r.join(' | ')} |`)
  .join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const report = `\n## Guarded server — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}. \`npm run bench:serve\`; small CNN, loopback HTTP, the load generator in the same process.\n\n${table}\n`;
console.log(report);
await appendFile('bench/RESULTS.md', report);
