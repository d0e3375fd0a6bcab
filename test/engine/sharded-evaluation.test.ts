// Sharded evaluation: the parts of a set, attacked separately (random starts keyed by image index) and merged from
// per-image values, give exactly what one job over the whole set gives; parts that do not tile the set are refused.
import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluateJob } from '../../engine/jobs/evaluate.js';
import { mergeParts, shardRange, SHARD_ALIGNMENT } from '../../engine/jobs/evaluate-shards.js';
import type { EvaluatePart, EvaluateRequest, EvaluateResult } from '../../engine/jobs/protocol.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const MODEL = 'examples/fashion-mnist/model.onnx';

async function request(): Promise<EvaluateRequest> {
  const bytes = await readFile(MODEL);
  return {
    kind: 'evaluate',
    modelPath: MODEL,
    modelSha256: createHash('sha256').update(bytes).digest('hex'),
    images: join(FASHION, 't10k-images-idx3-ubyte.gz'),
    labels: join(FASHION, 't10k-labels-idx1-ubyte.gz'),
    classes: 10,
    limit: 700,
    range: [0, 1],
    seed: 7,
    attacks: [
      { id: 'fgsm', attack: 'fgsm', eps: 0.1 },
      // Random starts and restarts: the draws that would differ if they were not keyed by image.
      { id: 'pgd', attack: 'pgd', eps: 0.1, steps: 3, restarts: 2 },
      { id: 'square', attack: 'square', eps: 0.1, queries: 15 },
      { id: 'deepfool', attack: 'deepfool', maxIter: 5 },
    ],
    curve: { attack: 'pgd', steps: 2, eps: [0.03, 0.1] },
    reference: true,
  };
}

const withoutTimes = (r: EvaluateResult) => ({ ...r, attacks: r.attacks.map((a) => ({ ...a, seconds: 0 })) });

async function parts(req: EvaluateRequest, count: number): Promise<EvaluatePart[]> {
  const out: EvaluatePart[] = [];
  for (let index = 0; index < count; index++)
    out.push((await evaluateJob({ ...req, shard: { index, count } }, () => {})).part!);
  return out;
}

describe('sharded evaluation', () => {
  test('three parts merged equal one job over the whole set, metric for metric', async () => {
    const req = await request();
    const whole = await evaluateJob(req, () => {});
    const three = await parts(req, 3);
    expect(three.map((p) => [p.start, p.end])).toEqual([
      [0, 256],
      [256, 512],
      [512, 700],
    ]);
    // Only the first part measures what needs the whole set.
    expect(three.map((p) => p.reference !== undefined)).toEqual([true, false, false]);
    const merged = mergeParts([three[2], three[0], three[1]]);
    expect(withoutTimes(merged)).toEqual(withoutTimes(whole));
    // The attacks did something: otherwise equality says nothing.
    expect(whole.attacks.find((a) => a.id === 'pgd')!.metrics.robust_accuracy).toBeLessThan(whole.cleanAccuracy);
    expect(whole.curve![0].robustAccuracy).toBeGreaterThan(whole.curve![1].robustAccuracy);
  }, 300_000);

  test('parts that overlap, leave a gap, or ran another suite are refused by name', async () => {
    const req = { ...(await request()), attacks: [{ id: 'fgsm', attack: 'fgsm' as const, eps: 0.1 }], limit: 600 };
    delete req.curve;
    delete req.reference;
    const [a, b, c] = await parts(req, 3);
    expect(() => mergeParts([a, c])).toThrow(
      'the part of images 512–600 does not start where the previous part ended (256)',
    );
    expect(() => mergeParts([a, b])).toThrow('the parts cover images 0–512, not all 600');
    expect(() => mergeParts([a, b, b, c])).toThrow('does not start where the previous part ended (512)');
    const other = { ...b, attacks: b.attacks.map((x) => ({ ...x, spec: { ...x.spec, eps: 0.3 } })) };
    expect(() => mergeParts([a, other, c])).toThrow('the part of images 256–512 ran another attack suite');
    // Stored as JSON, a NaN distance comes back as null: it stays NaN (unmeasured), and non-classes are refused.
    const stored = (p: EvaluatePart) => JSON.parse(JSON.stringify(p)) as EvaluatePart;
    const withNaN = (p: EvaluatePart) => ({
      ...p,
      attacks: p.attacks.map((x) => ({ ...x, samples: { ...x.samples, linf: x.samples.linf.map(() => NaN) } })),
    });
    const nan = mergeParts([a, b, c].map(withNaN).map(stored));
    expect(nan.attacks[0].metrics.median_linf).toBeNaN();
    const badLabel = {
      ...b,
      attacks: b.attacks.map((x) => ({ ...x, samples: { ...x.samples, clean: x.samples.clean.map(() => 10) } })),
    };
    expect(() => mergeParts([a, badLabel, c])).toThrow('fgsm, images 256–512: clean holds 10, not a class of 10');
    const short = { ...b, attacks: b.attacks.map((x) => ({ ...x, samples: { ...x.samples, l2: [1] } })) };
    expect(() => mergeParts([a, short, c])).toThrow('fgsm, images 256–512: l2 has not one value per image');
  }, 120_000);

  test('parts start on batch boundaries and tile any set', () => {
    for (const [images, count] of [
      [10_000, 4],
      [700, 3],
      [100, 5],
      [0, 2],
      [257, 64],
    ] as const) {
      const ranges = Array.from({ length: count }, (_v, i) => shardRange(images, i, count));
      expect(ranges[0].start).toBe(0);
      expect(ranges[count - 1].end).toBe(images);
      ranges.forEach((r, i) => {
        if (i > 0) expect(r.start).toBe(ranges[i - 1].end);
        if (r.start < images) expect(r.start % SHARD_ALIGNMENT).toBe(0);
      });
    }
    expect(shardRange(10_000, 3, 4)).toEqual({ start: 7680, end: 10_000 });
    expect(() => shardRange(100, 0, 65)).toThrow('shard count 65: expected an integer from 1 to 64');
    expect(() => shardRange(100, 2, 2)).toThrow('shard 2: expected an integer from 0 to 1');
  });
});
