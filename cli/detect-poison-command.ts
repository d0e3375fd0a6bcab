// `secmlops detect-poison`: flags training images that look poisoned, from a reference model's penultimate
// activations (a model given with --model, or one trained here on the suspect data). With --truth (a poison.json
// from `secmlops poison`) it also scores the detection: recall, false-positive rate over the clean images examined,
// precision.
import { readFile, writeFile } from 'node:fs/promises';
import { loadSplit } from '../engine/data/fashion.js';
import { loadModel } from '../engine/onnx/model.js';
import {
  DETECT_METHODS,
  activationClustering,
  activations,
  scoreDetection,
  spectralSignatures,
  type DetectMethod,
} from '../engine/poison/detect.js';
import { train } from '../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../engine/train/zoo.js';
import { progressBar } from './render.js';
import { UsageError } from './usage-error.js';

export interface DetectPoisonCommand {
  data: string;
  model?: string;
  arch: string;
  epochs: number;
  method: string;
  truth?: string;
  limit?: number;
  rate: number;
  seed: number;
  json?: string;
}

const progress = (line: string) => process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);

async function readTruth(path: string, count: number): Promise<number[]> {
  let truth: { indices?: unknown; count?: unknown };
  try {
    truth = JSON.parse(await readFile(path, 'utf8')) as typeof truth;
  } catch (e) {
    throw new UsageError(`--truth: cannot read ${path} as JSON (${(e as Error).message})`);
  }
  const indices = truth.indices;
  if (!Array.isArray(indices) || !indices.every((i) => Number.isInteger(i) && i >= 0))
    throw new UsageError(`--truth: ${path} has no list of poisoned image indices ("indices")`);
  if (truth.count !== undefined && truth.count !== count)
    throw new UsageError(
      `--truth: ${path} describes a set of ${JSON.stringify(truth.count)} images, the data has ${count}`,
    );
  return indices as number[];
}

export async function detectPoisonCommand(o: DetectPoisonCommand): Promise<void> {
  if (!(DETECT_METHODS as readonly string[]).includes(o.method))
    throw new UsageError(`--method: expected ${DETECT_METHODS.join(' or ')}, got "${o.method}"`);
  if (!(o.rate > 0 && o.rate <= 0.5)) throw new UsageError(`--rate: must be in (0, 0.5], got ${o.rate}`);
  const arch = ARCHITECTURES[o.arch];
  if (!o.model && !arch)
    throw new UsageError(`--arch: expected ${Object.keys(ARCHITECTURES).join(', ')}, got "${o.arch}"`);
  const full = await loadSplit(o.data, 'train');
  const data = o.limit ? await loadSplit(o.data, 'train', { limit: o.limit }) : full;
  const truth = o.truth ? await readTruth(o.truth, full.count) : undefined;
  let model;
  if (o.model) model = await loadModel(o.model);
  else {
    console.error(`training a reference ${arch.name} on ${data.count} suspect images, ${o.epochs} epochs`);
    const r = await train({
      arch,
      data,
      epochs: o.epochs,
      seed: o.seed,
      onProgress: (p) =>
        progress(
          `reference model: epoch ${p.epoch}/${p.epochs} ${progressBar(p.step, p.steps)} acc ${(p.accuracy * 100).toFixed(1)}%`,
        ),
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    model = deployableModel(arch, r.deploy);
  }
  const acts = await activations(model, data, { onProgress: (d, t) => progress(`activations ${progressBar(d, t)}`) });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const classes = 10;
  const method = o.method as DetectMethod;
  const detection =
    method === 'spectral'
      ? spectralSignatures(acts, data.labels, classes, o.rate, o.seed)
      : activationClustering(acts, data.labels, classes, { seed: o.seed });
  const scores = truth ? scoreDetection(detection.flagged, truth, data.count) : undefined;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  console.log(`${method}: flagged ${detection.flagged.length} of ${data.count} images`);
  for (const c of detection.classes.filter((x) => x.flagged > 0))
    console.log(`  class ${c.class}: ${c.flagged} of ${c.images}`);
  if (scores)
    console.log(
      `  recall ${pct(scores.recall)}, false-positive rate ${pct(scores.false_positive_rate)}, precision ${pct(scores.precision)}`,
    );
  if (o.json)
    await writeFile(
      o.json,
      `${JSON.stringify({ method, images: data.count, ...scores, flagged: detection.flagged, classes: detection.classes }, null, 1)}\n`,
    );
}
