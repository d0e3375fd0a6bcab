// Every random draw of a training run comes from its own generator keyed by (seed, epoch, step), so a run resumed
// from a checkpoint at (epoch, step) draws exactly what the uninterrupted run drew.
import { Rng } from '../runtime/rng.js';

export const rngFor = (seed: number, epoch: number, step = -1) =>
  new Rng((Math.imul(seed, 2654435761) ^ Math.imul(epoch + 1, 40503) ^ Math.imul(step + 2, 2246822519)) >>> 0);
