// Training: checkpoints resume a run exactly, and the defenses produce adversarial batches within eps.
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadModel } from '../../engine/onnx/model.js';
import { loadSplit } from '../../engine/data/fashion.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../engine/train/checkpoint.js';
import { learningRate } from '../../engine/train/optim.js';
import { betterEpoch, train, type TrainOptions } from '../../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel, smallCnn, trainableModel } from '../../engine/train/zoo.js';
import { inspectModel } from '../../engine/inspect.js';
import { runAttack } from '../../engine/attacks/run.js';
import { computeMetrics } from '../../engine/metrics/metrics.js';
import { AttackTarget } from '../../engine/attacks/target.js';
import { FASHION } from '../helpers/fixture.js';

const equal = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) =>
  [...a].every(([k, v]) => Buffer.from(v.buffer).equals(Buffer.from(b.get(k)!.buffer)));

describe('training', () => {
  test('2 epochs straight equal 1 epoch plus a resumed epoch, and a mid-epoch resume, bit for bit', async () => {
    const data = await loadSplit(FASHION, 'train', { limit: 640 });
    const base: TrainOptions = {
      arch: smallCnn,
      data,
      epochs: 2,
      batch: 64,
      defense: { kind: 'fgsm-rs', eps: 0.1 },
      seed: 3,
      threads: 2,
      optimizer: 'adam',
      schedule: 'one-cycle',
      lr: 2e-3,
    };
    const straight = await train(base);
    const saved: Checkpoint[] = [];
    // Round-trip every checkpoint through its file encoding, as a real resume would.
    const keep = async (c: Checkpoint) => void saved.push(decodeCheckpoint(encodeCheckpoint(c), 'ckpt'));
    await train({ ...base, checkpointEvery: 4, onCheckpoint: keep });
    const afterEpoch1 = saved.find((c) => c.epoch === 1 && c.step === 0)!;
    const midEpoch2 = saved.find((c) => c.epoch === 1 && c.step === 4)!;
    const resumed = await train({ ...base, resume: afterEpoch1 });
    const resumedMid = await train({ ...base, resume: midEpoch2 });
    expect(equal(resumed.weights, straight.weights)).toBe(true);
    expect(equal(resumedMid.weights, straight.weights)).toBe(true);
    expect(resumedMid.history).toEqual(
      straight.history.map((h, i) => ({ ...h, seconds: resumedMid.history[i].seconds })),
    );
  }, 120_000);

  test('a resume with different settings is refused', async () => {
    const data = await loadSplit(FASHION, 'train', { limit: 128 });
    let ckpt: Checkpoint | undefined;
    await train({ arch: smallCnn, data, epochs: 1, batch: 64, onCheckpoint: async (c) => void (ckpt = c) });
    await expect(train({ arch: smallCnn, data, epochs: 1, batch: 32, resume: ckpt })).rejects.toThrow(
      'cannot resume: the checkpoint was made with batch = 64, not 32',
    );
    expect(() => decodeCheckpoint(Buffer.from('nope'), 'x.ckpt')).toThrow('x.ckpt: not a SecMLOps checkpoint');
    expect(() => decodeCheckpoint(encodeCheckpoint(ckpt!).subarray(0, 200), 'y.ckpt')).toThrow(
      /y\.ckpt: (truncated|damaged) checkpoint/,
    );
    expect(() => decodeCheckpoint(Buffer.from('SECMLOPS-CKPT-1\n....'), 'z.ckpt')).toThrow(
      "z.ckpt: checkpoint format 1 is not this version's (2); start the run afresh",
    );
  }, 60_000);

  test('early stopping keeps the epoch with the best robust validation accuracy', async () => {
    const all = await loadSplit(FASHION, 'train', { limit: 1200 });
    const d = 784;
    const data = {
      ...all,
      count: 1000,
      images: all.images.subarray(0, 1000 * d),
      labels: all.labels.subarray(0, 1000),
    };
    const validation = { ...all, count: 200, images: all.images.subarray(1000 * d), labels: all.labels.subarray(1000) };
    const r = await train({
      arch: smallCnn,
      data,
      epochs: 3,
      defense: { kind: 'fgsm-rs', eps: 0.1 },
      earlyStop: { validation, eps: 0.1, steps: 5 },
    });
    const scores = r.history.map((h) => h.robustValidation!);
    expect(scores.every((s) => s >= 0 && s <= 1)).toBe(true);
    expect(r.bestEpoch).toBe(scores.indexOf(Math.max(...scores)) + 1);
    // A clean floor no epoch reaches keeps the cleanest epoch instead.
    const floored = await train({
      arch: smallCnn,
      data,
      epochs: 3,
      defense: { kind: 'fgsm-rs', eps: 0.1 },
      earlyStop: { validation, eps: 0.1, steps: 5, minClean: 1 },
    });
    const clean = floored.history.map((h) => h.cleanValidation!);
    expect(clean.every((c) => c > 0.1 && c < 1)).toBe(true);
    expect(floored.bestEpoch).toBe(clean.indexOf(Math.max(...clean)) + 1);
  }, 180_000);

  test('early stopping with a clean floor: above it the most robust epoch, below it the cleanest', () => {
    const e = (robustValidation: number, cleanValidation: number) => ({ robustValidation, cleanValidation });
    expect(betterEpoch(e(0.7, 0.86), e(0.6, 0.9), undefined)).toBe(true);
    expect(betterEpoch(e(0.7, 0.86), e(0.6, 0.9), 0.87)).toBe(false);
    expect(betterEpoch(e(0.5, 0.88), e(0.7, 0.86), 0.87)).toBe(true);
    expect(betterEpoch(e(0.65, 0.88), e(0.6, 0.9), 0.87)).toBe(true);
    expect(betterEpoch(e(0.6, 0.88), e(0.6, 0.9), 0.87)).toBe(false);
    expect(betterEpoch(e(0.9, 0.85), e(0.1, 0.86), 0.87)).toBe(false);
    expect(betterEpoch(e(0.1, 0.865), e(0.9, 0.86), 0.87)).toBe(true);
  });

  test.each(Object.values(ARCHITECTURES).map((a) => [a.name, a] as const))(
    '%s trains and exports a deployable model with the same graph',
    async (_n, arch) => {
      const data = await loadSplit(FASHION, 'train', { limit: 128 });
      const r = await train({ arch, data, epochs: 1, batch: 64 });
      const model = deployableModel(arch, r.deploy);
      const summary = inspectModel(model);
      expect(summary.inputs).toEqual([{ name: 'input', shape: ['N', 1, 28, 28] }]);
      expect(summary.parameters).toBe(arch.params.reduce((a, p) => a + p.dims.reduce((x, y) => x * y, 1), 0));
      const target = await AttackTarget.create(model);
      expect(target.classes).toBe(10);
      // Training and deployment share one forward definition: the same ops in the same order.
      expect(model.graph!.node!.map((n) => n.opType)).toEqual(trainableModel(arch).graph!.node!.map((n) => n.opType));
    },
    60_000,
  );

  test('learning-rate schedules', () => {
    expect(learningRate('constant', 1e-3, 50, 100)).toBe(1e-3);
    expect(learningRate('cosine', 1, 0, 100)).toBe(1);
    expect(learningRate('cosine', 1, 100, 100)).toBeCloseTo(0, 10);
    expect(learningRate('one-cycle', 2, 30, 100)).toBeCloseTo(2, 10);
    expect(learningRate('one-cycle', 2, 0, 100)).toBeCloseTo(0.08, 10);
    expect(learningRate('one-cycle', 2, 100, 100)).toBe(0);
  });
});

describe('secmlops train', () => {
  const run = (args: string[]) =>
    promisify(execFile)(process.execPath, ['bin/secmlops.js', 'train', '--data', FASHION, ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

  test('trains with a defense, checkpoints, resumes, and writes a model onnxruntime runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'train-'));
    const args = [
      '--limit',
      '256',
      '--epochs',
      '2',
      '--defense',
      'fgsm-rs',
      '--eps',
      '0.1',
      '--checkpoint-dir',
      join(dir, 'ck'),
      '--out',
      join(dir, 'm.onnx'),
    ];
    const first = await run(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^wrote .*m\.onnx: \d+\.\d+% clean accuracy on the 10000 test images/);
    const again = await run([...args, '--resume']);
    expect(again.stderr).toContain('resuming from');
    expect(again.stderr).toContain('epoch 2 done, step 0 of the next');
    expect((await loadModel(join(dir, 'm.onnx'))).graph!.initializer!.length).toBe(6);
  }, 120_000);

  test('bad flags are named', async () => {
    expect((await run(['--defense', 'pgd', '--out', '/tmp/x.onnx'])).stderr).toContain('--defense pgd needs --eps > 0');
    expect((await run(['--defense', 'trades', '--out', '/tmp/x.onnx'])).stderr).toContain(
      '--defense trades needs --eps > 0',
    );
    expect((await run(['--defense', 'madry', '--eps', '0.1', '--out', '/tmp/x.onnx'])).stderr).toContain(
      'unknown --defense "madry"; expected none, fgsm-rs, pgd, trades or dp-sgd',
    );
    expect((await run(['--resume', '--out', '/tmp/x.onnx'])).stderr).toContain('--resume needs --checkpoint-dir');
    expect(
      (await run(['--defense', 'pgd', '--eps', '0.1', '--step-size', '0.5', '--out', '/tmp/x.onnx'])).stderr,
    ).toContain('--step-size must be above 0 and at most 2·eps (0.2), got 0.5');
  }, 60_000);
});

describe('bad training input stops with a clear error and keeps the last good checkpoint', () => {
  test('a loss that becomes NaN', async () => {
    const data = await loadSplit(FASHION, 'train', { limit: 640 });
    const base = { arch: smallCnn, batch: 64, checkpointEvery: 1 };
    const clean: Checkpoint[] = [];
    await train({ ...base, data, epochs: 2, onCheckpoint: async (c) => void clean.push(c) });
    const good = clean.find((c) => c.epoch === 1 && c.step === 0);
    // Epoch 2 meets a corrupt pixel; nothing after it may be written.
    const images = data.images.slice();
    images[300 * 784 + 10] = NaN;
    const saved: Checkpoint[] = [];
    const run = train({
      ...base,
      data: { ...data, images },
      epochs: 2,
      resume: good,
      onCheckpoint: async (c) => void saved.push(c),
    });
    await expect(run).rejects.toThrow(
      /^the loss became NaN at epoch 2, step \d+; lower the learning rate \(now 0\.001\) or check the data$/,
    );
    for (const c of [good!, ...saved]) for (const w of c.weights.values()) expect(w.every(Number.isFinite)).toBe(true);
  }, 60_000);

  test('an empty training set', async () => {
    const data = await loadSplit(FASHION, 'train', { limit: 10 });
    await expect(
      train({
        arch: smallCnn,
        data: { ...data, count: 0, images: new Float32Array(0), labels: new Uint8Array(0) },
        epochs: 1,
      }),
    ).rejects.toThrow('the training set is empty');
  });

  test('a checkpoint from another architecture, and a corrupted one', async () => {
    const data = await loadSplit(FASHION, 'train', { limit: 128 });
    let ckpt: Checkpoint | undefined;
    await train({ arch: smallCnn, data, epochs: 1, batch: 64, onCheckpoint: async (c) => void (ckpt = c) });
    await expect(train({ arch: ARCHITECTURES.mlp, data, epochs: 1, batch: 64, resume: ckpt })).rejects.toThrow(
      'cannot resume: the checkpoint was made with arch = "small-cnn", not "mlp"',
    );
    const bytes = encodeCheckpoint(ckpt!);
    // One flipped bit in the last weight.
    bytes[bytes.length - 40] ^= 0x01;
    expect(() => decodeCheckpoint(bytes, 'c.ckpt')).toThrow(
      'c.ckpt: damaged checkpoint (its SHA-256 does not match its contents; truncated or altered)',
    );
    expect(() => decodeCheckpoint(bytes.subarray(0, 100), 'c.ckpt')).toThrow(/c\.ckpt: (truncated|damaged) checkpoint/);
  }, 60_000);
});

describe('defenses', () => {
  test('each defense improves PGD robustness over standard training on a small subset', async () => {
    const data = await loadSplit(FASHION, 'train', { limit: 3000 });
    const test = await loadSplit(FASHION, 'test', { limit: 500 });
    const robust = async (defense: TrainOptions['defense']) => {
      const r = await train({ arch: smallCnn, data, epochs: 3, defense, seed: 2 });
      const target = await AttackTarget.create(deployableModel(smallCnn, r.deploy));
      return computeMetrics(
        await runAttack(target, test, { attack: 'pgd', eps: 0.1, steps: 10 }, { range: { min: 0, max: 1 } }),
        10,
      ).robust_accuracy;
    };
    const standard = await robust({ kind: 'none' });
    const fgsmRs = await robust({ kind: 'fgsm-rs', eps: 0.1 });
    const pgdAt = await robust({ kind: 'pgd', eps: 0.1, steps: 3 });
    const trades = await robust({ kind: 'trades', eps: 0.1, steps: 3 });
    console.log(
      `PGD-10 robust accuracy after 3 epochs on 3000 images: standard ${standard}, FGSM-RS ${fgsmRs}, PGD-3 AT ${pgdAt}, TRADES (3 steps) ${trades}`,
    );
    // A broken defense (no perturbation, or one outside the ball) leaves robustness near the standard model's.
    expect(standard).toBeLessThan(0.15);
    expect(fgsmRs).toBeGreaterThan(standard + 0.15);
    expect(pgdAt).toBeGreaterThan(standard + 0.15);
    expect(trades).toBeGreaterThan(standard + 0.15);
  }, 240_000);
});
