// Drift scoring on real data: the example model's answers on Fashion-MNIST test images, summarised as the server
// summarises its inputs, against the reference the evaluate stage records.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { loadSplit, type ImageSet } from '../../engine/data/fashion.js';
import { kolmogorovQ, ksTest, psiContinuous, psiCounts } from '../../engine/monitor/drift.js';
import { referenceOf, summarise, type DriftReference } from '../../engine/monitor/stats.js';
import type { TelemetryRecord } from '../../engine/monitor/telemetry.js';
import { scoreWindow } from '../../engine/monitor/window.js';
import { loadModel } from '../../engine/onnx/model.js';
import { Rng } from '../../engine/runtime/rng.js';
import { createSession, floatTensor } from '../../engine/runtime/session.js';
import { FASHION } from '../helpers/fixture.js';

const D = 784;
const THRESHOLDS = { psi: 0.25, ksPValue: 0.001, minInputs: 100 };
let data: ImageSet;
let logitsOf: (x: Float32Array, n: number) => Promise<Float32Array>;
let reference: DriftReference;

beforeAll(async () => {
  const session = await createSession(await loadModel('examples/fashion-mnist/model.onnx'));
  logitsOf = async (x, n) => {
    const out = await session.run({ [session.inputNames[0]]: floatTensor(x, [n, 1, 28, 28]) });
    return out[session.outputNames[0]].data as Float32Array;
  };
  data = await loadSplit(FASHION, 'test');
  reference = await referenceFrom(0, 1000);
});

async function records(x: Float32Array, n: number): Promise<TelemetryRecord[]> {
  return summarise(x, await logitsOf(x, n), n).map((s) => ({ ...s, t: 0, model: 'm' }));
}

async function referenceFrom(from: number, to: number): Promise<DriftReference> {
  const x = data.images.slice(from * D, to * D);
  return referenceOf(summarise(x, await logitsOf(x, to - from), to - from), 10);
}

/** Brightness up and Gaussian noise: a camera that changed. */
function shifted(x: Float32Array, rng: Rng): Float32Array {
  return x.map((v) => Math.min(1, Math.max(0, v + 0.15 + 0.1 * rng.normal())));
}

describe('drift statistics', () => {
  test('PSI is zero for identical distributions and grows with a shift', () => {
    const a = Array.from({ length: 1000 }, (_, i) => i / 1000);
    expect(psiContinuous(a, a)).toBeCloseTo(0, 10);
    expect(
      psiContinuous(
        a,
        a.map((v) => v + 0.3),
      ),
    ).toBeGreaterThan(1);
    expect(psiCounts([10, 10], [10, 10])).toBeCloseTo(0, 10);
    expect(psiCounts([50, 50], [90, 10])).toBeGreaterThan(0.5);
  });

  test('KS matches known values', () => {
    // Q_KS(1.36) ≈ 0.049 and Q_KS(1.63) ≈ 0.0098: the textbook 5% and 1% critical values.
    expect(kolmogorovQ(1.36)).toBeCloseTo(0.0494, 3);
    expect(kolmogorovQ(1.63)).toBeCloseTo(0.0098, 3);
    const a = Array.from({ length: 500 }, (_, i) => i);
    expect(ksTest(a, a).d).toBe(0);
    expect(
      ksTest(
        a,
        a.map((v) => v + 250),
      ),
    ).toMatchObject({ d: 0.5 });
    expect(
      ksTest(
        a,
        a.map((v) => v + 250),
      ).p,
    ).toBeLessThan(1e-20);
  });
});

describe('windows of real traffic', () => {
  test('50 unshifted windows of 180 held-out test images raise no alert', async () => {
    const alerts: string[] = [];
    for (let w = 0; w < 50; w++) {
      const from = 1000 + w * 180;
      const s = scoreWindow(reference, await records(data.images.slice(from * D, (from + 180) * D), 180), THRESHOLDS);
      expect(s.drift).toHaveLength(4);
      alerts.push(...s.breaches.map((b) => `window ${w}: ${b.detail}`));
    }
    expect(alerts).toEqual([]);
  });

  test('brightness and noise on the inputs is detected in the first window', async () => {
    const rng = new Rng(7);
    const x = shifted(data.images.slice(1000 * D, 1180 * D), rng);
    const s = scoreWindow(reference, await records(x, 180), THRESHOLDS);
    expect(s.breaches.map((b) => b.kind)).toEqual(['drift']);
    expect(s.drift.find((d) => d.stat === 'mean')).toMatchObject({ drifted: true });
  });

  test('a window with fewer inputs than minInputs is not judged', async () => {
    const x = shifted(data.images.slice(0, 50 * D), new Rng(1));
    const s = scoreWindow(reference, await records(x, 50), THRESHOLDS);
    expect(s).toMatchObject({ inputs: 50, drift: [], breaches: [] });
  });

  test('a flag rate above the threshold breaches', async () => {
    const recs = (await records(data.images.slice(0, 200 * D), 200)).map((r, i) => ({ ...r, flag: i < 40 }));
    const s = scoreWindow(reference, recs, { ...THRESHOLDS, flagRate: 0.15 });
    expect(s.breaches).toEqual([{ kind: 'detector', detail: expect.stringContaining('flagged 40 of 200') }]);
  });
});
