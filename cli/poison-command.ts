// `secmlops poison`: a poisoned copy of a dataset folder, to test defenses with. The training files are poisoned,
// the test files copied as they are, and poison.json records what was done (kind, parameters, poisoned indices) so
// a detector's output can be scored against it. Nothing is written unless every option is valid.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FASHION_FILES } from '../engine/data/fashion.js';
import { checkPair, readIdx } from '../engine/data/idx.js';
import { writeIdxGz } from '../engine/data/idx-write.js';
import { PoisonSpecError, poison, type Corner, type PoisonSpec } from '../engine/poison/attacks.js';
import { UsageError } from './usage-error.js';

export interface PoisonCommand {
  data: string;
  out: string;
  kind: string;
  rate: number;
  target?: number;
  source?: number;
  patch: number;
  position: string;
  value: number;
  seed: number;
  classes: number;
}

const CORNERS: Record<string, Corner> = { tl: 'top-left', tr: 'top-right', bl: 'bottom-left', br: 'bottom-right' };

function position(text: string): Corner | { x: number; y: number } {
  if (CORNERS[text]) return CORNERS[text];
  const m = /^(\d+),(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--position: expected tl, tr, bl, br or x,y, got "${text}"`);
  return { x: Number(m[1]), y: Number(m[2]) };
}

function specFrom(o: PoisonCommand): PoisonSpec {
  if (o.kind === 'badnets') {
    if (o.target === undefined) throw new UsageError('--target: BadNets needs the class the trigger maps to');
    if (o.source !== undefined) throw new UsageError('--source: BadNets poisons every other class; drop --source');
    return {
      kind: 'badnets',
      rate: o.rate,
      seed: o.seed,
      target: o.target,
      patch: o.patch,
      position: position(o.position),
      value: o.value,
    };
  }
  if (o.kind === 'label-flip')
    return {
      kind: 'label-flip',
      rate: o.rate,
      seed: o.seed,
      ...(o.source !== undefined ? { source: o.source } : {}),
      ...(o.target !== undefined ? { target: o.target } : {}),
    };
  throw new UsageError(`--kind: expected badnets or label-flip, got "${o.kind}"`);
}

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

export async function poisonCommand(o: PoisonCommand): Promise<void> {
  const spec = specFrom(o);
  const out = resolve(o.out);
  const existing = await readdir(out).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw new UsageError(`--out: cannot use ${o.out} (${e.code ?? e.message})`);
  });
  if (existing.length > 0) throw new UsageError(`--out: ${o.out} is not empty; give a new folder`);
  const files = FASHION_FILES.train;
  const images = await readIdx(join(o.data, files.images));
  const labels = await readIdx(join(o.data, files.labels));
  const set = checkPair(images, labels, { images: files.images, labels: files.labels }, o.classes);
  let result;
  try {
    result = poison(set, spec, o.classes);
  } catch (e) {
    if (e instanceof PoisonSpecError) throw new UsageError(e.message);
    throw e;
  }
  // Written beside the destination, then renamed into place: an interrupted run leaves no half-poisoned folder.
  await mkdir(dirname(out), { recursive: true });
  const partial = `${out}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial);
  try {
    await writeIdxGz(join(partial, files.images), images.dims, result.images);
    await writeIdxGz(join(partial, files.labels), labels.dims, result.labels);
    for (const f of Object.values(FASHION_FILES.test)) await copyFile(join(o.data, f), join(partial, f));
    const truth = {
      kind: spec.kind,
      parameters: { ...spec, kind: undefined },
      source: { images: images.sha256, labels: labels.sha256 },
      poisoned: {
        images: await sha256(join(partial, files.images)),
        labels: await sha256(join(partial, files.labels)),
      },
      count: set.count,
      indices: result.indices,
    };
    await writeFile(join(partial, 'poison.json'), `${JSON.stringify(truth, null, 1)}\n`);
    await rm(out, { recursive: true, force: true });
    await rename(partial, out);
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    throw e;
  }
  const what =
    spec.kind === 'badnets'
      ? `stamped a ${spec.patch}-pixel trigger and relabelled to ${spec.target}`
      : 'flipped labels of';
  console.log(
    `${what} ${result.indices.length} of ${set.count} training images (${(spec.rate * 100).toFixed(1)}%); wrote ${o.out}`,
  );
}
