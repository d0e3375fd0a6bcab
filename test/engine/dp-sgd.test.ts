// DP-SGD training: a run resumed from a checkpoint takes exactly the steps the uninterrupted run took (same Poisson
// samples, same noise), so it ends with the same weights and the same ε; bad settings name their option.
import { describe, expect, test } from '@jest/globals';
import { loadSplit } from '../../engine/data/fashion.js';
import { epsilon } from '../../engine/privacy/rdp.js';
import type { Checkpoint } from '../../engine/train/checkpoint.js';
import { trainDpSgd } from '../../engine/train/dp-sgd.js';
import { smallCnn } from '../../engine/train/zoo.js';

const data = await loadSplit('/usr/share/datasets/fashion-mnist', 'train', { limit: 1000 });
const dp = { noiseMultiplier: 1.1, clip: 1, sampleRate: 0.1, delta: 1e-5 };

describe('DP-SGD', () => {
  test('resuming from a mid-epoch checkpoint gives the same model and ε as the straight run', async () => {
    const straight = await trainDpSgd({ arch: smallCnn, data, epochs: 2, dp, seed: 3 });
    const saved: Checkpoint[] = [];
    await trainDpSgd({
      arch: smallCnn,
      data,
      epochs: 2,
      dp,
      seed: 3,
      checkpointEvery: 4,
      onCheckpoint: async (c) => {
        saved.push(c);
      },
    });
    // Epoch 2, step 4: after the first epoch's 10 steps and 4 of the second's.
    const mid = saved.find((c) => c.epoch === 1 && c.step === 4)!;
    expect(mid).toBeDefined();
    const resumed = await trainDpSgd({ arch: smallCnn, data, epochs: 2, dp, seed: 3, resume: mid });
    for (const p of smallCnn.params) expect(resumed.weights.get(p.name)).toEqual(straight.weights.get(p.name));
    expect(resumed.privacy.steps).toBe(20);
    expect(resumed.privacy.epsilon).toBe(straight.privacy.epsilon);
    expect(straight.privacy.epsilon).toBe(epsilon({ sampleRate: 0.1, noiseMultiplier: 1.1, steps: 20 }, 1e-5).epsilon);
  }, 120_000);

  test.each([
    [{ ...dp, clip: 0 }, '--clip: must be above 0'],
    [{ ...dp, noiseMultiplier: -1 }, '--noise-multiplier: must be above 0'],
    [{ ...dp, sampleRate: 2 }, '--sample-rate: must be in (0, 1]'],
    [{ ...dp, delta: 0 }, '--delta: must be in (0, 1)'],
  ])('refuses %j', async (settings, message) => {
    await expect(trainDpSgd({ arch: smallCnn, data, epochs: 1, dp: settings })).rejects.toThrow(message);
  });
});
