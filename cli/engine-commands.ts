// Engine commands: run the engine outside Temporal, as a library user would.
import { writeFile } from 'node:fs/promises';
import { loadSplit } from '../engine/data/fashion.js';
import { saveModel } from '../engine/onnx/model.js';
import { createSession } from '../engine/runtime/session.js';
import { accuracy, train } from '../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../engine/train/zoo.js';
import { progressBar } from './render.js';

export interface TrainCommand {
  data: string;
  arch: string;
  epochs: number;
  limit?: number;
  seed: number;
  out: string;
}

export async function trainCommand(o: TrainCommand): Promise<void> {
  const arch = ARCHITECTURES[o.arch];
  if (!arch) throw new Error(`unknown --arch "${o.arch}"; available: ${Object.keys(ARCHITECTURES).join(', ')}`);
  const data = await loadSplit(o.data, 'train', { limit: o.limit });
  const test = await loadSplit(o.data, 'test');
  console.error(`training ${arch.name} on ${data.count} images for ${o.epochs} epochs (Adam 1e-3, batch 128, seed ${o.seed})`);
  const weights = await train({
    arch,
    data,
    epochs: o.epochs,
    seed: o.seed,
    onProgress: (p) => {
      const line = `epoch ${p.epoch}/${p.epochs} ${progressBar(p.step, p.steps)} loss ${p.loss.toFixed(4)} acc ${(p.accuracy * 100).toFixed(1)}% ${Math.round(p.imagesPerSecond)} img/s`;
      process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const model = deployableModel(arch, weights);
  await writeFile(o.out, saveModel(model));
  const acc = await accuracy(await createSession(model), test, arch.classes);
  console.log(`wrote ${o.out}: ${(acc * 100).toFixed(2)}% clean accuracy on the ${test.count} test images`);
}

export interface AttackCommand {
  model: string;
  data: string;
  attack: string;
  eps?: number;
  steps?: number;
  restarts?: number;
  norm: string;
  limit?: number;
  seed: number;
  json?: string;
  range: string;
}

export async function attackCommand(o: AttackCommand): Promise<void> {
  const { ATTACKS, describeSpec, runAttack } = await import('../engine/attacks/run.js');
  const { AttackTarget } = await import('../engine/attacks/target.js');
  const { computeMetrics } = await import('../engine/metrics/metrics.js');
  const { inspectModel } = await import('../engine/inspect.js');
  const { loadModel } = await import('../engine/onnx/model.js');
  if (!(ATTACKS as readonly string[]).includes(o.attack)) throw new Error(`unknown --attack "${o.attack}"; expected one of ${ATTACKS.join(', ')}`);
  if (o.attack !== 'deepfool' && o.eps === undefined) throw new Error(`--eps is required for ${o.attack}`);
  if (o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`--norm must be linf or l2, not "${o.norm}"`);
  const [min, max] = o.range.split(',').map(Number);
  if (!(min < max)) throw new Error(`--range must be "min,max" with min < max, got "${o.range}"`);
  const model = await loadModel(o.model);
  const data = await loadSplit(o.data, 'test', { limit: o.limit });
  let attack = o.attack as (typeof ATTACKS)[number];
  const missing = inspectModel(model).withoutGradient;
  if (missing.length > 0 && attack !== 'square') {
    if (attack === 'deepfool') throw new Error(`DeepFool needs gradients, but the model has ops without a gradient rule: ${missing.join(', ')}`);
    console.error(`the model has ops without a gradient rule (${missing.join(', ')}): using the forward-only Square Attack instead of ${attack}`);
    attack = 'square';
  }
  const norm: 'linf' | 'l2' = o.norm === 'l2' ? 'l2' : 'linf';
  const spec = { attack, eps: o.eps, steps: o.steps, restarts: o.restarts, norm };
  const target = await AttackTarget.create(model);
  const started = performance.now();
  const results = await runAttack(target, data, spec, {
    range: { min, max },
    seed: o.seed,
    onProgress: (done, total) => process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}${describeSpec(spec)} ${progressBar(done, total)} ${done}/${total} images${process.stderr.isTTY ? '' : '\n'}`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - started) / 1000;
  const m = computeMetrics(results, target.classes);
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  console.log(`| attack | images | clean accuracy | robust accuracy | success rate | median Linf | median L2 | images/s |`);
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- |`);
  console.log(`| ${describeSpec(spec)} | ${m.images} | ${pct(m.clean_accuracy)} | ${pct(m.robust_accuracy)} | ${pct(m.attack_success_rate)} | ${m.median_linf.toFixed(4)} | ${m.median_l2.toFixed(4)} | ${(m.images / seconds).toFixed(0)} |`);
  if (o.json) {
    const { confusion, classes, ...summary } = m;
    const report = { model: o.model, data: o.data, ...summary, attack: { ...spec, stepSize: spec.attack === 'pgd' && o.eps !== undefined ? (2.5 * o.eps) / (o.steps ?? 20) : undefined, range: [min, max], seed: o.seed }, seconds, confusion, classes };
    await writeFile(o.json, JSON.stringify(report, null, 2) + '\n');
  }
}
