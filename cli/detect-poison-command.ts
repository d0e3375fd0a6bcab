// `secmlops detect-poison`: flags training images that look poisoned, from a reference model's penultimate
// activations (a model given with --model, or one trained here on the suspect data). With --truth (a poison.json
// from `secmlops poison`) it also scores the detection: recall, false-positive rate over the clean images examined,
// precision.
import { readFile, writeFile } from 'node:fs/promises';
import { loadSplit } from '../engine/data/fashion.js';
import { loadModel } from '../engine/onnx/model.js';
import { DETECT_METHODS, scoreDetection, type DetectMethod } from '../engine/poison/detect.js';
import { findPoison } from '../engine/poison/find.js';
import { ARCHITECTURES } from '../engine/train/zoo.js';
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
  const model = o.model ? await loadModel(o.model) : undefined;
  if (!model) console.error(`training a reference ${arch.name} on ${data.count} suspect images, ${o.epochs} epochs`);
  const method = o.method as DetectMethod;
  let phase = '';
  const detection = await findPoison(data, {
    method,
    classes: 10,
    rate: o.rate,
    seed: o.seed,
    model,
    arch: o.arch,
    epochs: o.epochs,
    onProgress: (p) => {
      if (phase && phase !== p.phase && process.stderr.isTTY) process.stderr.write('\n');
      phase = p.phase;
      const acc = p.accuracy === undefined ? '' : ` acc ${(p.accuracy * 100).toFixed(1)}%`;
      progress(`${p.phase} ${progressBar(p.done, p.total)}${acc}`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
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
