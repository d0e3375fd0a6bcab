// Data-poisoning attacks, to test defenses with: label flipping (random, or targeted source → target) and BadNets
// (Gu et al. 2017: a small patch stamped on a fraction of the images, which are relabelled to the target class, so
// the trained model learns "patch means target"). Seeded, so a poisoned set and its truth file can be remade.
import { InputError } from '../input-error.js';
import { Rng } from '../runtime/rng.js';

/** A poisoning option out of range: names the CLI option, so the message says what to change. */
export class PoisonSpecError extends InputError {
  constructor(
    readonly option: string,
    detail: string,
  ) {
    super(`${option}: ${detail}`);
    this.name = 'PoisonSpecError';
  }
}

export type Corner = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

export interface Trigger {
  /** Side of the square patch, in pixels. */
  patch: number;
  position: Corner | { x: number; y: number };
  /** The pixel value stamped (0–255). */
  value: number;
}

export type PoisonSpec =
  | { kind: 'label-flip'; rate: number; seed: number; source?: number; target?: number }
  | ({ kind: 'badnets'; rate: number; seed: number; target: number } & Trigger);

export interface RawSet {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

export interface Poisoned {
  images: Uint8Array;
  labels: Uint8Array;
  /** Poisoned images, ascending. */
  indices: number[];
}

/** The patch's top-left corner in an image of rows × cols. */
export function triggerOrigin(t: Trigger, rows: number, cols: number): { x: number; y: number } {
  if (typeof t.position === 'object') return t.position;
  const right = t.position.endsWith('right');
  const bottom = t.position.startsWith('bottom');
  return { x: right ? cols - t.patch : 0, y: bottom ? rows - t.patch : 0 };
}

/** Stamps the trigger on image `i` in place: the raw value on bytes, or `value` (the scaled one) on floats. */
export function stamp(
  images: Uint8Array | Float32Array,
  i: number,
  rows: number,
  cols: number,
  t: Trigger,
  value = t.value,
): void {
  const { x, y } = triggerOrigin(t, rows, cols);
  const base = i * rows * cols;
  for (let r = y; r < y + t.patch; r++) images.fill(value, base + r * cols + x, base + r * cols + x + t.patch);
}

function checkSpec(spec: PoisonSpec, classes: number, rows: number, cols: number): void {
  if (!(spec.rate > 0 && spec.rate <= 0.5))
    throw new PoisonSpecError('--rate', `must be in (0, 0.5], got ${spec.rate}`);
  const cls = (v: number | undefined, option: string) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v < classes))
      throw new PoisonSpecError(option, `class ${v} is outside the dataset's classes 0..${classes - 1}`);
  };
  cls(spec.target, '--target');
  if (spec.kind === 'label-flip') {
    cls(spec.source, '--source');
    if (spec.source !== undefined && spec.target === undefined)
      throw new PoisonSpecError('--target', 'targeted label flipping (--source) needs a target class');
    if (spec.source !== undefined && spec.source === spec.target)
      throw new PoisonSpecError('--source', `source and target are both class ${spec.source}`);
    return;
  }
  checkTrigger(spec, rows, cols);
}

/** Refuses a trigger that does not fit the images or a value outside 0..255, naming the CLI option. */
export function checkTrigger(t: Trigger, rows: number, cols: number): void {
  if (!(Number.isInteger(t.patch) && t.patch >= 1 && t.patch <= Math.min(rows, cols)))
    throw new PoisonSpecError('--patch', `a ${t.patch}-pixel patch does not fit in ${rows}×${cols} images`);
  if (!(Number.isInteger(t.value) && t.value >= 0 && t.value <= 255))
    throw new PoisonSpecError('--value', `pixel values are 0..255, got ${t.value}`);
  const { x, y } = triggerOrigin(t, rows, cols);
  if (!(Number.isInteger(x) && Number.isInteger(y) && x >= 0 && y >= 0 && x + t.patch <= cols && y + t.patch <= rows))
    throw new PoisonSpecError('--position', `a ${t.patch}-pixel patch at ${x},${y} leaves the ${rows}×${cols} image`);
}

/** k distinct items of `from`, chosen by a partial Fisher-Yates shuffle with the seeded generator. */
function sample(from: number[], k: number, rng: Rng): number[] {
  const a = [...from];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng.next() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k).sort((x, y) => x - y);
}

/** The poisoned copy of a labelled set; the input is left as it was. */
export function poison(set: RawSet, spec: PoisonSpec, classes: number): Poisoned {
  checkSpec(spec, classes, set.rows, set.cols);
  const rng = new Rng(spec.seed);
  const k = Math.round(spec.rate * set.count);
  const all = Array.from({ length: set.count }, (_, i) => i);
  const source = spec.kind === 'label-flip' ? spec.source : undefined;
  // BadNets and flips to a target poison images of other classes (a target-class image relabelled to itself
  // changes nothing); targeted flipping poisons images of the source class.
  const candidates =
    spec.kind === 'badnets'
      ? all.filter((i) => set.labels[i] !== spec.target)
      : source !== undefined
        ? all.filter((i) => set.labels[i] === source)
        : spec.target !== undefined
          ? all.filter((i) => set.labels[i] !== spec.target)
          : all;
  if (k < 1) throw new PoisonSpecError('--rate', `${spec.rate} of ${set.count} images poisons none`);
  if (k > candidates.length)
    throw new PoisonSpecError(
      '--rate',
      `${k} images to poison, but only ${candidates.length} ${source !== undefined ? 'are of the source class' : spec.target !== undefined ? 'are outside the target class' : 'exist'}`,
    );
  const indices = sample(candidates, k, rng);
  const images = set.images.slice();
  const labels = set.labels.slice();
  for (const i of indices) {
    if (spec.kind === 'badnets') {
      stamp(images, i, set.rows, set.cols, spec);
      labels[i] = spec.target;
    } else if (spec.target !== undefined) {
      labels[i] = spec.target;
    } else {
      // A random other class: uniform over the classes - 1 that differ from the true one.
      const other = Math.floor(rng.next() * (classes - 1));
      labels[i] = other >= set.labels[i] ? other + 1 : other;
    }
  }
  return { images, labels, indices };
}
