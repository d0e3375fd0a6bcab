// Engine commands: run the engine outside Temporal, as a library user would.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { holdOutValidation, loadSplit } from '../engine/data/fashion.js';
import { MODEL_LIMITS, parseModel, saveModel } from '../engine/onnx/model.js';
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { createHash } from 'node:crypto';
import type { DistillConfig } from '../engine/train/distill.js';
import { createSession } from '../engine/runtime/session.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../engine/train/checkpoint.js';
import { accuracy, train, type Defense } from '../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../engine/train/zoo.js';
import type { LoadOptions } from '../engine/onnx/limits.js';
import { modelLimitsFrom } from './model-limits.js';
import { progressBar } from './render.js';
import { UsageError } from './usage-error.js';

export interface TrainCommand {
  data: string;
  arch: string;
  defense: string;
  eps?: number;
  pgdSteps: number;
  beta: number;
  stepSize?: number;
  earlyStop?: boolean;
  cutmix?: number;
  cutmixProb: number;
  distillFrom?: string;
  temperature?: number;
  alpha: number;
  epochs: number;
  batch: number;
  lr: number;
  optimizer: string;
  schedule: string;
  limit?: number;
  seed: number;
  out: string;
  checkpointDir?: string;
  checkpointEvery: number;
  resume?: boolean;
  /** --defense dp-sgd */
  noiseMultiplier?: number;
  clip?: number;
  sampleRate?: number;
  delta: number;
  targetEpsilon?: number;
  json?: string;
}

export async function trainCommand(o: TrainCommand): Promise<void> {
  if (o.cutmix !== undefined && !(o.cutmix > 0))
    throw new UsageError(`--cutmix: alpha must be above 0, got ${o.cutmix}`);
  if (!(o.cutmixProb > 0 && o.cutmixProb <= 1))
    throw new UsageError(`--cutmix-prob: expected a probability in (0, 1], got ${o.cutmixProb}`);
  const distill = await distillOption(o);
  if (o.defense === 'dp-sgd') {
    if (distill) throw new UsageError('--distill-from and --temperature with --defense dp-sgd are not built yet');
    if (o.cutmix !== undefined) throw new UsageError('--cutmix with --defense dp-sgd is not built yet');
    const { dpTrainCommand } = await import('./dp-train-command.js');
    return dpTrainCommand(o);
  }
  const arch = ARCHITECTURES[o.arch];
  if (!arch) throw new Error(`unknown --arch "${o.arch}"; available: ${Object.keys(ARCHITECTURES).join(', ')}`);
  const defense = parseDefense(o);
  if (o.optimizer !== 'adam' && o.optimizer !== 'sgd')
    throw new Error(`--optimizer must be adam or sgd, not "${o.optimizer}"`);
  if (!['constant', 'cosine', 'one-cycle'].includes(o.schedule))
    throw new Error(`--schedule must be constant, cosine or one-cycle, not "${o.schedule}"`);
  if (o.resume && !o.checkpointDir) throw new Error('--resume needs --checkpoint-dir');
  const all = await loadSplit(o.data, 'train', { limit: o.limit });
  const test = await loadSplit(o.data, 'test');
  const { data, validation } = holdOutValidation(all, !!o.earlyStop);
  if (o.earlyStop && !defense.eps)
    throw new Error('--early-stop needs --eps (robust validation accuracy is measured at that budget)');
  const ckptPath = o.checkpointDir ? join(o.checkpointDir, 'latest.ckpt') : undefined;
  let resume: Checkpoint | undefined;
  if (o.resume && ckptPath) {
    resume = decodeCheckpoint(
      await readFile(ckptPath).catch((e: NodeJS.ErrnoException) => {
        throw new Error(`cannot resume: ${ckptPath} (${e.code ?? e.message})`);
      }),
      ckptPath,
    );
    console.error(`resuming from ${ckptPath}: epoch ${resume.epoch} done, step ${resume.step} of the next`);
  }
  if (o.checkpointDir) await mkdir(o.checkpointDir, { recursive: true });
  console.error(
    `training ${arch.name} on ${data.count} images, defense ${describeDefense(defense.defense)}` +
      `${o.cutmix !== undefined ? `, CutMix α ${o.cutmix} p ${o.cutmixProb}` : ''}` +
      `${distill ? `, ${o.distillFrom ? `distilled from ${o.distillFrom} at` : 'trained at'}` : ''}` +
      `${distill ? ` T ${distill.temperature}` : ''}` +
      `, ${o.epochs} epochs ` +
      `(${o.optimizer} ${o.lr}, ${o.schedule}, batch ${o.batch}, seed ${o.seed})`,
  );
  const result = await train({
    arch,
    data,
    epochs: o.epochs,
    batch: o.batch,
    lr: o.lr,
    optimizer: o.optimizer,
    schedule: o.schedule as 'constant' | 'cosine' | 'one-cycle',
    seed: o.seed,
    defense: defense.defense,
    ...(o.cutmix !== undefined ? { cutmix: { alpha: o.cutmix, prob: o.cutmixProb } } : {}),
    ...(distill ? { distill } : {}),
    earlyStop: o.earlyStop ? { validation, eps: defense.eps!, steps: 10 } : undefined,
    resume,
    checkpointEvery: o.checkpointEvery,
    onCheckpoint: ckptPath
      ? async (c) => {
          await writeFile(`${ckptPath}.tmp`, encodeCheckpoint(c));
          await rename(`${ckptPath}.tmp`, ckptPath);
        }
      : undefined,
    onProgress: (p) => {
      const line = `epoch ${p.epoch}/${p.epochs} ${progressBar(p.step, p.steps)} loss ${p.loss.toFixed(4)} acc ${(p.accuracy * 100).toFixed(1)}% ${Math.round(p.imagesPerSecond)} img/s`;
      process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
    },
    onEpoch: (r) => {
      const robust =
        r.robustValidation === undefined ? '' : `, robust validation ${(r.robustValidation * 100).toFixed(2)}%`;
      process.stderr.write(
        `${process.stderr.isTTY ? '\n' : ''}epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, accuracy ${(r.accuracy * 100).toFixed(2)}%${robust}, ${r.seconds.toFixed(0)} s\n`,
      );
    },
  });
  const model = deployableModel(arch, result.deploy);
  await writeFile(o.out, saveModel(model));
  const acc = await accuracy(await createSession(model), test, arch.classes);
  const which = result.bestEpoch ? ` (best epoch ${result.bestEpoch} by robust validation accuracy)` : '';
  console.log(`wrote ${o.out}${which}: ${(acc * 100).toFixed(2)}% clean accuracy on the ${test.count} test images`);
}

function parseDefense(o: TrainCommand): { defense: Defense; eps?: number } {
  if (o.defense === 'none') return { defense: { kind: 'none' }, eps: o.eps };
  if (o.eps === undefined || !(o.eps > 0)) throw new Error(`--defense ${o.defense} needs --eps > 0`);
  if (o.stepSize !== undefined && !(o.stepSize > 0 && o.stepSize <= 2 * o.eps))
    throw new Error(`--step-size must be above 0 and at most 2·eps (${2 * o.eps}), got ${o.stepSize}`);
  const step = o.stepSize === undefined ? {} : { stepSize: o.stepSize };
  if (o.defense === 'fgsm-rs') return { defense: { kind: 'fgsm-rs', eps: o.eps, ...step }, eps: o.eps };
  if (o.defense === 'pgd') return { defense: { kind: 'pgd', eps: o.eps, steps: o.pgdSteps, ...step }, eps: o.eps };
  if (o.defense === 'trades')
    return { defense: { kind: 'trades', eps: o.eps, steps: o.pgdSteps, beta: o.beta, ...step }, eps: o.eps };
  throw new Error(`unknown --defense "${o.defense}"; expected none, fgsm-rs, pgd, trades or dp-sgd`);
}

function describeDefense(d: Defense): string {
  if (d.kind === 'none') return 'none';
  const step = d.stepSize === undefined ? '' : ` step ${d.stepSize}`;
  if (d.kind === 'fgsm-rs') return `FGSM-RS eps ${d.eps}${step}`;
  if (d.kind === 'pgd') return `PGD-${d.steps ?? 7} eps ${d.eps}${step}`;
  return `TRADES beta ${d.beta ?? 6} (PGD-${d.steps ?? 7} on KL) eps ${d.eps}${step}`;
}

export interface AttackCommand extends LoadOptions {
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
  /** --attack backdoor: the poison.json of a BadNets poisoning. */
  trigger?: string;
}

export async function attackCommand(o: AttackCommand): Promise<void> {
  const { ATTACKS, describeSpec, runAttack } = await import('../engine/attacks/run.js');
  const { AttackTarget } = await import('../engine/attacks/target.js');
  const { computeMetrics } = await import('../engine/metrics/metrics.js');
  const { inspectModel } = await import('../engine/inspect.js');
  const { loadModel } = await import('../engine/onnx/model.js');
  if (o.attack === 'backdoor') {
    const { backdoorCommand } = await import('./backdoor-command.js');
    return backdoorCommand(o);
  }
  if (!(ATTACKS as readonly string[]).includes(o.attack))
    throw new Error(`unknown --attack "${o.attack}"; expected one of ${[...ATTACKS, 'backdoor'].join(', ')}`);
  if (o.attack !== 'deepfool' && o.eps === undefined) throw new Error(`--eps is required for ${o.attack}`);
  if (o.norm !== 'linf' && o.norm !== 'l2') throw new Error(`--norm must be linf or l2, not "${o.norm}"`);
  const [min, max] = o.range.split(',').map(Number);
  if (!(min < max)) throw new Error(`--range must be "min,max" with min < max, got "${o.range}"`);
  const model = await loadModel(o.model, modelLimitsFrom(o));
  const data = await loadSplit(o.data, 'test', { limit: o.limit });
  let attack = o.attack as (typeof ATTACKS)[number];
  const missing = inspectModel(model).withoutGradient;
  if (missing.length > 0 && attack !== 'square') {
    if (attack === 'deepfool')
      throw new Error(`DeepFool needs gradients, but the model has ops without a gradient rule: ${missing.join(', ')}`);
    console.error(
      `the model has ops without a gradient rule (${missing.join(', ')}): using the forward-only Square Attack instead of ${attack}`,
    );
    attack = 'square';
  }
  const norm: 'linf' | 'l2' = o.norm === 'l2' ? 'l2' : 'linf';
  const spec = { attack, eps: o.eps, steps: o.steps, restarts: o.restarts, norm };
  const target = await AttackTarget.create(model);
  const started = performance.now();
  const results = await runAttack(target, data, spec, {
    range: { min, max },
    seed: o.seed,
    onProgress: (done, total) =>
      process.stderr.write(
        `${process.stderr.isTTY ? '\r' : ''}${describeSpec(spec)} ${progressBar(done, total)} ${done}/${total} images${process.stderr.isTTY ? '' : '\n'}`,
      ),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - started) / 1000;
  const m = computeMetrics(results, target.classes);
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  console.log(
    `| attack | images | clean accuracy | robust accuracy | success rate | median Linf | median L2 | images/s |`,
  );
  console.log(`| --- | --- | --- | --- | --- | --- | --- | --- |`);
  console.log(
    `| ${describeSpec(spec)} | ${m.images} | ${pct(m.clean_accuracy)} | ${pct(m.robust_accuracy)} | ${pct(m.attack_success_rate)} | ${m.median_linf.toFixed(4)} | ${m.median_l2.toFixed(4)} | ${(m.images / seconds).toFixed(0)} |`,
  );
  if (o.json) {
    const { confusion, classes, ...summary } = m;
    const report = {
      model: o.model,
      data: o.data,
      ...summary,
      attack: {
        ...spec,
        stepSize: spec.attack === 'pgd' && o.eps !== undefined ? (2.5 * o.eps) / (o.steps ?? 20) : undefined,
        range: [min, max],
        seed: o.seed,
      },
      seconds,
      confusion,
      classes,
    };
    await writeFile(o.json, JSON.stringify(report, null, 2) + '\n');
  }
}

/** --distill-from TEACHER --temperature T [--alpha A], or --temperature T alone (training at temperature T). */
async function distillOption(o: TrainCommand): Promise<DistillConfig | undefined> {
  if (o.distillFrom === undefined && o.temperature === undefined) return undefined;
  if (o.temperature === undefined || !(o.temperature > 0))
    throw new UsageError(`--temperature: expected a temperature above 0, got ${o.temperature ?? 'none'}`);
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw new UsageError(`--alpha: expected a weight in [0, 1], got ${o.alpha}`);
  if (o.distillFrom === undefined) return { temperature: o.temperature, alpha: 1 };
  const bytes = await readRegular(o.distillFrom, MODEL_LIMITS.maxBytes).catch((e: unknown) => {
    throw e instanceof RegularFileError ? new UsageError(`--distill-from: ${e.message}`) : e;
  });
  return {
    temperature: o.temperature,
    alpha: o.alpha,
    teacher: parseModel(bytes, o.distillFrom),
    teacherSha256: createHash('sha256').update(bytes).digest('hex'),
  };
}
