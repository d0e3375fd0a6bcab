// Measuring a backdoor: the test images of every class but the target, stamped with the trigger, and the share the
// model then classifies as the target (the attack success rate). The same images without the trigger give the
// baseline: how often the model says "target" for them anyway.
import type { ImageSet } from '../data/fashion.js';
import { InputError } from '../input-error.js';
import { argmax } from '../train/trainer.js';
import { checkTrigger, stamp, type Trigger } from './attacks.js';

export type BackdoorTrigger = Trigger & { target: number };

export interface BackdoorMetrics {
  /** Test images outside the target class: the ones the trigger could move. */
  images: number;
  target: number;
  /** Share of them classified as the target with the trigger stamped. */
  success_rate: number;
  /** Share of them classified as the target without it. */
  baseline_rate: number;
}

/** Forward pass of a batch of n images: logits, n × classes. */
export type Logits = (x: Float32Array, n: number) => Promise<Float32Array>;

export async function backdoorSuccess(
  logits: Logits,
  classes: number,
  data: ImageSet,
  trigger: BackdoorTrigger,
  o: { batch?: number; range?: [number, number]; onProgress?: (done: number, total: number) => void } = {},
): Promise<BackdoorMetrics> {
  const [channels, rows, cols] = data.shape;
  if (channels !== 1)
    throw new InputError(`backdoor trigger: images have ${channels} channels; the trigger is for one`);
  try {
    checkTrigger(trigger, rows, cols);
  } catch (e) {
    throw new InputError(`backdoor trigger: ${(e as Error).message}`);
  }
  if (!(Number.isInteger(trigger.target) && trigger.target >= 0 && trigger.target < classes))
    throw new InputError(`backdoor trigger: target class ${trigger.target} is outside the model's 0..${classes - 1}`);
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
    success_rate: n ? hit / n : 0,
    baseline_rate: n ? baseline / n : 0,
  };
}
