// Measuring a backdoor: the test images of every class but the target, stamped with the trigger, and the share the
// model then classifies as the target (the attack success rate). The same images without the trigger give the
// baseline: how often the model says "target" for them anyway.
import type { ImageSet } from '../data/fashion.js';
import { InputError } from '../input-error.js';
import { argmax } from '../metrics/predictions.js';
import { checkTrigger, stamp, type Trigger } from './attacks.js';

export type BackdoorTrigger = Trigger & { target: number };

export interface BackdoorMetrics {
  /** Test images outside the target class: the ones the trigger could move. */
  images: number;
  target: number;
  /** Share of them classified as the target with the trigger stamped (NaN when there are none). */
  success_rate: number;
  /** Share of them classified as the target without it (NaN when there are none). */
  baseline_rate: number;
}

/** Forward pass of a batch of n images: logits, n × classes. */
export type Logits = (x: Float32Array, n: number) => Promise<Float32Array>;

/** Refuses a trigger that does not fit these images or a target outside the classes, naming `where` (a policy path). */
export function checkBackdoor(
  trigger: BackdoorTrigger,
  shape: [number, number, number],
  classes: number,
  where: string,
) {
  const [channels, rows, cols] = shape;
  if (channels !== 1) throw new InputError(`${where}: images have ${channels} channels; the trigger is for one`);
  try {
    checkTrigger(trigger, rows, cols);
  } catch (e) {
    const option = (e as { option?: string }).option?.replace(/^--/, '') ?? '';
    const detail = (e as Error).message.replace(/^--[a-z]+: /, '');
    throw new InputError(`${where}${option ? `.${option}` : ''}: ${detail}`);
  }
  if (!(Number.isInteger(trigger.target) && trigger.target >= 0 && trigger.target < classes))
    throw new InputError(`${where}.target: class ${trigger.target} is outside the model's 0..${classes - 1}`);
}

export async function backdoorSuccess(
  logits: Logits,
  classes: number,
  data: ImageSet,
  trigger: BackdoorTrigger,
  o: {
    batch?: number;
    range?: [number, number];
    /** Names the trigger in errors (a policy path such as evaluate.backdoor). */
    where?: string;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<BackdoorMetrics> {
  const [, rows, cols] = data.shape;
  checkBackdoor(trigger, data.shape, classes, o.where ?? 'backdoor trigger');
  const [min, max] = o.range ?? [0, 1];
  // The trigger's pixel value on the scale the model reads (bytes / 255 into the range).
  const value = min + (trigger.value / 255) * (max - min);
  const pixels = rows * cols;
  const others: number[] = [];
  for (let i = 0; i < data.count; i++) if (data.labels[i] !== trigger.target) others.push(i);
  const batch = o.batch ?? 500;
  let hit = 0;
  let baseline = 0;
  for (let s = 0; s < others.length; s += batch) {
    const idx = others.slice(s, s + batch);
    const clean = new Float32Array(idx.length * pixels);
    idx.forEach((i, k) => clean.set(data.images.subarray(i * pixels, (i + 1) * pixels), k * pixels));
    const stamped = clean.slice();
    for (let k = 0; k < idx.length; k++) stamp(stamped, k, rows, cols, trigger, value);
    const [a, b] = [await logits(clean, idx.length), await logits(stamped, idx.length)];
    for (let k = 0; k < idx.length; k++) {
      if (argmax(a, k * classes, classes) === trigger.target) baseline++;
      if (argmax(b, k * classes, classes) === trigger.target) hit++;
    }
    o.onProgress?.(s + idx.length, others.length);
  }
  const n = others.length;
  return {
    images: n,
    target: trigger.target,
    // Nothing to measure is not a 0% success rate: a gate on it must fail as not measured.
    success_rate: n ? hit / n : NaN,
    baseline_rate: n ? baseline / n : NaN,
  };
}
