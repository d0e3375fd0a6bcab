// DP-SGD's per-example gradients: each row equals the existing gradient graph run on that example alone, for the
// zoo's CNNs and MLP on real images; the clipped graph sums exactly min(1, C/‖gᵢ‖)·gᵢ; and an outlier example moves
// the clipped sum by at most C, however large its own gradient.
import { describe, expect, test } from '@jest/globals';
import { differentiate } from '../../engine/autodiff/differentiate.js';
import { loadSplit } from '../../engine/data/fashion.js';
import { createSession, floatTensor, int64Tensor } from '../../engine/runtime/session.js';
import { Rng } from '../../engine/runtime/rng.js';
import { initWeights, mlp, smallCnn, trainableModel, wideCnn, type Architecture } from '../../engine/train/zoo.js';

const N = 6;
const data = await loadSplit('/usr/share/datasets/fashion-mnist', 'test', { limit: N });

type Feeds = Record<string, ReturnType<typeof floatTensor>>;
function feeds(arch: Architecture, weights: Map<string, Float32Array>, x: Float32Array, y: number[], labels: string) {
  const f: Feeds = { input: floatTensor(x, [y.length, ...arch.input]), [labels]: int64Tensor(y, [y.length]) };
  for (const p of arch.params) f[p.name] = floatTensor(weights.get(p.name)!, p.dims);
  return f;
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function setup(arch: Architecture) {
  const weights = initWeights(arch, new Rng(7));
  const model = trainableModel(arch);
  const wrt = arch.params.map((p) => p.name);
  const raw = differentiate(model, { wrt, perExample: 'raw' });
  const plain = differentiate(model, { wrt });
  const clipped = differentiate(model, { wrt, perExample: 'clipped' });
  return {
    weights,
    raw,
    plain,
    clipped,
    rawSession: await createSession(raw.model),
    plainSession: await createSession(plain.model),
    clippedSession: await createSession(clipped.model),
  };
}

describe('per-example gradients', () => {
  test.each([
    ['small CNN', smallCnn],
    ['wide CNN', wideCnn],
    ['MLP', mlp],
  ])(
    '%s: each row equals the gradient of that example alone, to 1e-5',
    async (_name, arch) => {
      const s = await setup(arch);
      const y = [...data.labels];
      const out = await s.rawSession.run(feeds(arch, s.weights, data.images, y, s.raw.labels));
      const pixels = data.images.length / N;
      for (let i = 0; i < N; i++) {
        const one = await s.plainSession.run(
          feeds(arch, s.weights, data.images.subarray(i * pixels, (i + 1) * pixels), [y[i]], s.plain.labels),
        );
        for (const p of arch.params) {
          const size = p.dims.reduce((a, b) => a * b, 1);
          const row = (out[s.raw.grads[p.name]].data as Float32Array).subarray(i * size, (i + 1) * size);
          const want = one[s.plain.grads[p.name]].data as Float32Array;
          expect(out[s.raw.grads[p.name]].dims).toEqual([N, ...p.dims]);
          const diff = maxAbs(row.map((v, k) => v - want[k]));
          expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(want)));
        }
      }
    },
    60_000,
  );

  test('clipping: the sum of min(1, C/‖gᵢ‖)·gᵢ, and the norms before it', async () => {
    const arch = smallCnn;
    const s = await setup(arch);
    const y = [...data.labels];
    const raw = await s.rawSession.run(feeds(arch, s.weights, data.images, y, s.raw.labels));
    const norms = new Float64Array(N);
    for (const p of arch.params) {
      const g = raw[s.raw.grads[p.name]].data as Float32Array;
      const size = g.length / N;
      for (let i = 0; i < N; i++) for (let k = 0; k < size; k++) norms[i] += g[i * size + k] ** 2;
    }
    norms.forEach((v, i) => (norms[i] = Math.sqrt(v)));
    // C between the norms, so the test sees both branches of the min.
    const C = [...norms].sort((a, b) => a - b)[N / 2];
    const f = feeds(arch, s.weights, data.images, y, s.clipped.labels);
    f[s.clipped.clip!] = floatTensor(new Float32Array([C]), []);
    const out = await s.clippedSession.run(f);
    const got = out[s.clipped.norms!].data as Float32Array;
    norms.forEach((v, i) => expect(Math.abs(got[i] - v)).toBeLessThanOrEqual(1e-4 * v));
    expect([...norms].some((v) => v > C) && [...norms].some((v) => v < C)).toBe(true);
    for (const p of arch.params) {
      const g = raw[s.raw.grads[p.name]].data as Float32Array;
      const size = g.length / N;
      const want = new Float32Array(size);
      for (let i = 0; i < N; i++) {
        const factor = Math.min(1, C / norms[i]);
        for (let k = 0; k < size; k++) want[k] += factor * g[i * size + k];
      }
      const sum = out[s.clipped.grads[p.name]].data as Float32Array;
      expect(out[s.clipped.grads[p.name]].dims).toEqual(p.dims);
      expect(maxAbs(sum.map((v, k) => v - want[k]))).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(want)));
    }
  }, 60_000);

  test('an outlier example moves the clipped sum by at most C', async () => {
    const arch = smallCnn;
    const s = await setup(arch);
    const C = 1;
    const pixels = data.images.length / N;
    // The last example's pixels blown up 50× and its label wrong: its own gradient is huge.
    const x = data.images.slice();
    for (let k = (N - 1) * pixels; k < N * pixels; k++) x[k] *= 50;
    const y = [...data.labels];
    y[N - 1] = (y[N - 1] + 5) % 10;
    const run = async (images: Float32Array, labels: number[]) => {
      const f = feeds(arch, s.weights, images, labels, s.clipped.labels);
      f[s.clipped.clip!] = floatTensor(new Float32Array([C]), []);
      const out = await s.clippedSession.run(f);
      return { out, grads: arch.params.map((p) => out[s.clipped.grads[p.name]].data as Float32Array) };
    };
    const all = await run(x, y);
    const without = await run(x.subarray(0, (N - 1) * pixels), y.slice(0, N - 1));
    const outlierNorm = (all.out[s.clipped.norms!].data as Float32Array)[N - 1];
    expect(outlierNorm).toBeGreaterThan(100 * C);
    let sq = 0;
    all.grads.forEach((g, j) => g.forEach((v, k) => (sq += (v - without.grads[j][k]) ** 2)));
    expect(Math.sqrt(sq)).toBeLessThanOrEqual(C * (1 + 1e-4));
    expect(Math.sqrt(sq)).toBeGreaterThan(0.99 * C);
  }, 60_000);

  test('MatMul by a weight: rows equal per-sample gradients; a parameter behind an op without a rule is refused', async () => {
    const { GraphBuilder } = await import('../../engine/onnx/builder.js');
    const build = (transposed: boolean) => {
      const g = new GraphBuilder();
      const x = g.input('input', ['N', 4]);
      const w = g.input('w', transposed ? [3, 4] : [4, 3]);
      const weight = transposed ? g.op('Transpose', [w], { perm: [1, 0] }) : w;
      g.op('MatMul', [x, weight], {}, ['logits']);
      g.output('logits', ['N', 3]);
      return g.build();
    };
    expect(() => differentiate(build(true), { wrt: ['w'], perExample: 'raw' })).toThrow(
      'reads a parameter and has no per-example gradient rule',
    );
    const raw = differentiate(build(false), { wrt: ['w'], perExample: 'raw' });
    const plain = differentiate(build(false), { wrt: ['w'] });
    const [rs, ps] = [await createSession(raw.model), await createSession(plain.model)];
    const x = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1));
    const w = Float32Array.from({ length: 12 }, (_, i) => Math.cos(i + 1));
    const labels = [0, 2, 1];
    const out = await rs.run({
      input: floatTensor(x, [3, 4]),
      w: floatTensor(w, [4, 3]),
      [raw.labels]: int64Tensor(labels, [3]),
    });
    const rows = out[raw.grads.w].data as Float32Array;
    for (let i = 0; i < 3; i++) {
      const one = await ps.run({
        input: floatTensor(x.subarray(i * 4, i * 4 + 4), [1, 4]),
        w: floatTensor(w, [4, 3]),
        [plain.labels]: int64Tensor([labels[i]], [1]),
      });
      const want = one[plain.grads.w].data as Float32Array;
      want.forEach((v, k) => expect(Math.abs(rows[i * 12 + k] - v)).toBeLessThanOrEqual(1e-6));
    }
  });
});
