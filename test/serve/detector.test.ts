// The guarded server's adversarial-input detector over HTTP: calibrated on clean held-out Fashion-MNIST images at
// 5% false positives, it flags PGD inputs made against the served model far more often than clean ones, counts
// them in /metrics, and with action "refuse" answers a flagged batch with 400.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pgd } from '../../engine/attacks/attacks.js';
import { AttackTarget } from '../../engine/attacks/target.js';
import { loadSplit, sliceSet, type ImageSet } from '../../engine/data/fashion.js';
import { FASHION_SQUEEZE } from '../../engine/detect/squeeze.js';
import { parseModel } from '../../engine/onnx/model.js';
import { Rng } from '../../engine/runtime/rng.js';
import type { ReleasePredicate } from '../../policy/attestation.js';
import type { AttestedModel } from '../../serve/attested-model.js';
import { calibrateDetector, type Detector } from '../../serve/detector.js';
import { createServer, type Server } from '../../serve/server.js';
import { FASHION } from '../helpers/fixture.js';
import { exampleModel } from '../helpers/monitored.js';

const D = 784;
let attested: AttestedModel;
let detector: Detector;
let clean: ImageSet;
let adversarial: Float32Array;
const servers: Server[] = [];

beforeAll(async () => {
  const bytes = await readFile('examples/fashion-mnist/model.onnx');
  // The attestation check has its own tests (serve.test.ts); here the model is taken as attested.
  const model = parseModel(bytes, 'model.onnx');
  attested = {
    model,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    pipeline: 'test',
    policyName: 'test',
    predicate: {} as ReleasePredicate,
  };
  const test = await loadSplit(FASHION, 'test');
  const target = await AttackTarget.create(model);
  detector = await calibrateDetector((x, n) => target.logits(x, n), sliceSet(test, 9000, 10000), {
    config: FASHION_SQUEEZE,
    fpr: 0.05,
    action: 'flag',
    range: [0, 1],
  });
  clean = sliceSet(test, 0, 200);
  const attacked = sliceSet(test, 200, 400);
  adversarial = await pgd(
    target,
    { x: attacked.images.slice(), labels: attacked.labels, n: attacked.count },
    { eps: 0.1, steps: 20, range: { min: 0, max: 1 }, rng: new Rng(1) },
  );
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function flagRate(server: Server, x: Float32Array): Promise<number> {
  let flagged = 0;
  const n = x.length / D;
  for (let i = 0; i < n; i += 50) {
    const inputs = Array.from({ length: 50 }, (_, k) => Array.from(x.subarray((i + k) * D, (i + k + 1) * D)));
    const res = await server.app.inject({ method: 'POST', url: '/v1/predict', payload: { inputs } });
    expect(res.statusCode).toBe(200);
    flagged += res.json<{ flags: boolean[] }>().flags.filter(Boolean).length;
  }
  return flagged / n;
}

describe('feature squeezing on the guarded server', () => {
  test('flags PGD inputs at a rate no broken detector reaches, and few clean ones', async () => {
    const server = await createServer({ attested, detector });
    servers.push(server);
    expect(detector.threshold).toBeGreaterThan(0);
    const cleanRate = await flagRate(server, clean.images);
    const pgdRate = await flagRate(server, adversarial);
    expect(cleanRate).toBeLessThanOrEqual(0.1);
    // A detector comparing an input with itself, or with an infinite threshold, flags none; one that flags
    // everything fails the clean bound.
    expect(pgdRate).toBeGreaterThanOrEqual(0.25);
    expect(pgdRate).toBeGreaterThan(3 * cleanRate);
    const metrics = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('secmlops_serve_detector_inputs_total 400');
    expect(metrics).toContain(`secmlops_serve_detector_flags_total ${Math.round(200 * (cleanRate + pgdRate))}`);
  });

  test('switching models under load drops no request, and each model gets its own calibrated threshold', async () => {
    const server = await createServer({ attested, detector });
    servers.push(server);
    const nudged = await exampleModel(0.5);
    const other: AttestedModel = {
      ...attested,
      model: parseModel(nudged, 'nudged.onnx'),
      sha256: createHash('sha256').update(nudged).digest('hex'),
    };
    const statuses: number[] = [];
    let stop = false;
    const inputs = Array.from({ length: 8 }, (_, k) => Array.from(clean.images.subarray(k * D, (k + 1) * D)));
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop)
        statuses.push(
          (await server.app.inject({ method: 'POST', url: '/v1/predict', payload: { inputs } })).statusCode,
        );
    });
    for (let k = 0; k < 6; k++) await server.served.switchTo(k % 2 ? attested : other, `sha256:${k}`);
    stop = true;
    await Promise.all(clients);
    expect(statuses.length).toBeGreaterThan(10);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(server.served.now.detectorThreshold).toBeGreaterThan(0);
    expect(server.metrics.text(attested.sha256)).toMatch(/^secmlops_serve_requests_total\{status="200"\} \d+$/m);
  }, 60_000);

  test('with action "refuse" a flagged batch is answered 400 and counted', async () => {
    const server = await createServer({ attested, detector: { ...detector, action: 'refuse' } });
    servers.push(server);
    const inputs = Array.from({ length: 20 }, (_, k) => Array.from(adversarial.subarray(k * D, (k + 1) * D)));
    const res = await server.app.inject({ method: 'POST', url: '/v1/predict', payload: { inputs } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      reason: 'flagged',
      detail: expect.stringMatching(/^the detector flagged inputs \d/),
    });
    expect(server.metrics.rejectionsFor('flagged')).toBe(1);
  });
});
