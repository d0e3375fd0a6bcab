// DP-SGD's cost: the per-example clipped gradient step against the plain step on the small CNN, interleaved, median
// of 5 one-epoch runs each over 6,400 images (plain batches of 256; DP-SGD's Poisson batches average 256). With
// PRIVACY_FULL=1 it also trains the README's DP-SGD model on all 60,000 images (about 10 minutes) and reports its
// test accuracy and (ε, δ). Prints the table and appends it to bench/RESULTS.md. Run with `npm run bench:privacy`.
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { loadSplit, sliceSet } from '../engine/data/fashion.js';
import { membershipInference } from '../engine/privacy/mia.js';
import { noiseFor } from '../engine/privacy/rdp.js';
import { createSession, floatTensor } from '../engine/runtime/session.js';
import { trainDpSgd } from '../engine/train/dp-sgd.js';
import { accuracy, train } from '../engine/train/trainer.js';
import { deployableModel, smallCnn } from '../engine/train/zoo.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const data = await loadSplit(FASHION, 'train', { limit: 6400 });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const plain: number[] = [];
const dp: number[] = [];
for (let r = 0; r < 5; r++) {
  let t0 = performance.now();
  await train({ arch: smallCnn, data, epochs: 1, batch: 256, seed: r + 1 });
  plain.push(data.count / ((performance.now() - t0) / 1000));
  t0 = performance.now();
  await trainDpSgd({
    arch: smallCnn,
    data,
    epochs: 1,
    seed: r + 1,
    dp: { noiseMultiplier: 1, clip: 1, sampleRate: 256 / data.count, delta: 1e-5 },
  });
  // Poisson batches: an epoch processes data.count images in expectation.
  dp.push(data.count / ((performance.now() - t0) / 1000));
  console.error(`run ${r + 1}: plain ${Math.round(plain[r])} img/s, DP-SGD ${Math.round(dp[r])} img/s`);
}
const rows = [
  ['plain step, batch 256', `${Math.round(median(plain))}`, '1.00'],
  [
    'DP-SGD step (per-example gradients, clipping, noise), q = 256/6400',
    `${Math.round(median(dp))}`,
    (median(dp) / median(plain)).toFixed(2),
  ],
];
// Membership inference on a model trained to overfit (250 images, 60 epochs) and on its DP-SGD twin (same images,
// epochs and expected batch), each attacked with its 250 members against 250 images it never saw.
const pool = await loadSplit(FASHION, 'train', { limit: 750 });
const members = sliceSet(pool, 0, 250);
const logitsOf = async (weights: Map<string, Float32Array>) => {
  const s = await createSession(deployableModel(smallCnn, weights));
  return async (x: Float32Array, n: number) =>
    (await s.run({ input: floatTensor(x, [n, 1, 28, 28]) }))[s.outputNames[0]].data as Float32Array;
};
const attack = async (weights: Map<string, Float32Array>) =>
  membershipInference(await logitsOf(weights), 10, members, sliceSet(pool, 250, 500), sliceSet(pool, 500, 750));
const overfit = await train({ arch: smallCnn, data: members, epochs: 60, batch: 25, seed: 1 });
const twin = await trainDpSgd({
  arch: smallCnn,
  data: members,
  epochs: 60,
  seed: 1,
  dp: { noiseMultiplier: 1.0, clip: 1, sampleRate: 0.1, delta: 1e-5 },
});
const testSet = await loadSplit(FASHION, 'test');
const miaRows: string[][] = [];
for (const [label, weights, eps] of [
  ['standard, 60 epochs on 250 images', overfit.deploy, '∞'],
  ['DP-SGD twin (σ 1.0, C 1, q 0.1)', twin.deploy, twin.privacy.epsilon.toFixed(1)],
] as const) {
  const m = await attack(weights);
  const acc = await accuracy(await createSession(deployableModel(smallCnn, weights)), testSet, 10);
  miaRows.push([
    label,
    eps,
    `${(acc * 100).toFixed(1)}%`,
    m.loss.auc.toFixed(3),
    m.loss.advantage.toFixed(3),
    m.calibrated.auc.toFixed(3),
    m.calibrated.advantage.toFixed(3),
  ]);
  console.error(miaRows[miaRows.length - 1].join(' | '));
}
let full = '';
if (process.env.PRIVACY_FULL === '1') {
  const all = await loadSplit(FASHION, 'train');
  const test = await loadSplit(FASHION, 'test');
  const q = 1024 / all.count;
  const sigma = noiseFor(q, 15, 2.9, 1e-5);
  const t0 = performance.now();
  const r = await trainDpSgd({
    arch: smallCnn,
    data: all,
    epochs: 15,
    lr: 0.002,
    dp: { noiseMultiplier: sigma, clip: 1, sampleRate: q, delta: 1e-5 },
  });
  const minutes = (performance.now() - t0) / 60000;
  const acc = await accuracy(await createSession(deployableModel(smallCnn, r.deploy)), test, 10);
  full = `\nFull run: small CNN, 15 epochs, q = 1024/60000, σ = ${sigma}, C = 1, Adam 0.002: ${(acc * 100).toFixed(2)}% test accuracy at (ε, δ) = (${r.privacy.epsilon.toFixed(3)}, 1e-5), ${minutes.toFixed(1)} min.\n`;
}
const table = [['step', 'images/s (median of 5)', 'ratio'], ['---', '---', '---'], ...rows]
  .map((r) => `| ${r.join(' | ')} |`)
  .join('\n');
const miaTable = [
  ['model', 'ε (δ 1e-5)', 'test accuracy', 'loss AUC', 'loss advantage', 'calibrated AUC', 'calibrated advantage'],
  ['---', '---', '---', '---', '---', '---', '---'],
  ...miaRows,
]
  .map((r) => `| ${r.join(' | ')} |`)
  .join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const report = `\n## DP-SGD cost — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}. \`npm run bench:privacy\`; small CNN, one epoch over 6,400 images per run, the two kinds interleaved.\n\n${table}\n\nMembership inference (250 members against 250 non-members; calibration on 250 more):\n\n${miaTable}\n${full}`;
console.log(report);
await appendFile('bench/RESULTS.md', report);
