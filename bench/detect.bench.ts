// Feature squeezing as an adversarial-input detector on Fashion-MNIST: thresholds calibrated at FPR 5% on test
// images 9000–9999, rates measured on images 0–999 (clean, FGSM eps 0.1, PGD-20 eps 0.1), for the example model and
// a small CNN adversarially trained here (PGD-3 eps 0.1, 4 epochs, about 5 minutes on 2 cores). Prints a Markdown
// table and appends it to bench/RESULTS.md. Run with `node --import tsx bench/detect.bench.ts`.
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { fgsm, pgd } from '../engine/attacks/attacks.js';
import { AttackTarget } from '../engine/attacks/target.js';
import { loadSplit, sliceSet } from '../engine/data/fashion.js';
import {
  FASHION_SQUEEZE,
  calibrateThreshold,
  squeezeScores,
  type RunLogits,
  type SqueezeConfig,
} from '../engine/detect/squeeze.js';
import { loadModel } from '../engine/onnx/model.js';
import type { ModelProto } from '../engine/onnx/proto.js';
import { Rng } from '../engine/runtime/rng.js';
import { argmax } from '../engine/metrics/predictions.js';
import { train } from '../engine/train/trainer.js';
import { deployableModel, smallCnn } from '../engine/train/zoo.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const SHAPE = [1, 28, 28];
const D = 784;
const N = 1000;
const range = { min: 0, max: 1 };
const CONFIGS: { label: string; c: SqueezeConfig }[] = [
  { label: `${FASHION_SQUEEZE.bits} bits (default)`, c: FASHION_SQUEEZE },
  { label: '1 bit + 2×2 median (paper, MNIST)', c: { bits: 1, median: 2 } },
  { label: '4 bits', c: { bits: 4, median: 1 } },
];
const test = await loadSplit(FASHION, 'test');
const calib = sliceSet(test, 9000, 10000);
const evalSet = sliceSet(test, 0, N);
const pct = (k: number, n: number) => (n === 0 ? '—' : `${((100 * k) / n).toFixed(1)}%`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

let t0 = performance.now();
const trained = await train({
  arch: smallCnn,
  data: await loadSplit(FASHION, 'train'),
  epochs: 4,
  lr: 0.002,
  schedule: 'one-cycle',
  defense: { kind: 'pgd', eps: 0.1, steps: 3 },
  seed: 1,
  onEpoch: (e) => console.error(`PGD-3 AT epoch ${e.epoch}: ${JSON.stringify(e)}`),
});
const trainMinutes = (performance.now() - t0) / 60000;

const models: { name: string; model: ModelProto }[] = [
  { name: 'example (undefended)', model: await loadModel('examples/fashion-mnist/model.onnx') },
  { name: 'small CNN, PGD-3 AT', model: deployableModel(smallCnn, trained.deploy) },
];
const rows: string[][] = [];
const notes: string[] = [];
for (const m of models) {
  const target = await AttackTarget.create(m.model);
  // Batches of at most 1000 rows keep onnxruntime's buffers small when scoring 3 × 1000 inputs at once.
  const run: RunLogits = async (x, n) => {
    const out = new Float32Array(n * target.classes);
    for (let s = 0; s < n; s += 1000) {
      const k = Math.min(1000, n - s);
      out.set(await target.logits(x.subarray(s * D, (s + k) * D), k), s * target.classes);
    }
    return out;
  };
  const batch = { x: evalSet.images.slice(), labels: evalSet.labels, n: N };
  t0 = performance.now();
  const attacks = [
    { name: 'FGSM', x: await fgsm(target, batch, { eps: 0.1, range }) },
    { name: 'PGD-20', x: await pgd(target, batch, { eps: 0.1, steps: 20, range, rng: new Rng(1) }) },
  ];
  console.error(`${m.name}: attacks took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const clean = await run(evalSet.images, N);
  const pred = (l: Float32Array, i: number) => argmax(l, i * target.classes, target.classes);
  const correct = evalSet.labels.filter((y, i) => pred(clean, i) === y).length;
  // Successful: the attack changed the model's prediction on that image.
  const success = await Promise.all(
    attacks.map(async (a) => {
      const l = await run(a.x, N);
      return Array.from({ length: N }, (_, i) => pred(l, i) !== pred(clean, i));
    }),
  );
  const changed = (k: number) => pct(success[k].filter(Boolean).length, N);
  notes.push(`${m.name}: clean accuracy ${pct(correct, N)}; FGSM changed ${changed(0)}, PGD-20 ${changed(1)}`);
  for (const { label, c } of CONFIGS) {
    const score = (x: Float32Array, n: number) => squeezeScores(run, x, n, SHAPE, c, [0, 1]);
    const threshold = calibrateThreshold(await score(calib.images, calib.count), 0.05);
    const flagged = (s: Float32Array, only?: boolean[]) => {
      const kept = Array.from(s).filter((_, i) => !only || only[i]);
      return pct(kept.filter((v) => v > threshold).length, kept.length);
    };
    const cells = [flagged(await score(evalSet.images, N))];
    for (const [k, a] of attacks.entries()) {
      const s = await score(a.x, N);
      cells.push(`${flagged(s)} (${flagged(s, success[k])})`);
    }
    // Latency of scoring alone (the squeezers and one onnxruntime run), one input at a time and in batches of 100.
    const perInput = async (n: number, reps: number) => {
      const times: number[] = [];
      for (let r = 0; r < reps; r++) {
        const i0 = (r * n) % (N - n + 1);
        const x = evalSet.images.subarray(i0 * D, (i0 + n) * D);
        const t = performance.now();
        await score(x, n);
        times.push((performance.now() - t) / n);
      }
      return median(times.slice(5)).toFixed(3);
    };
    const latency = `${await perInput(1, 505)} / ${await perInput(100, 25)}`;
    rows.push([m.name, label, threshold.toFixed(3), ...cells, latency]);
    console.error(rows[rows.length - 1].join(' | '));
  }
}

const header = [
  'model',
  'squeezers',
  'threshold',
  'clean flagged',
  'FGSM flagged (of successful)',
  'PGD-20 flagged (of successful)',
  'ms per input, batch 1 / 100',
];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const report =
  `\n## Feature squeezing — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n` +
  `${machine}. \`node --import tsx bench/detect.bench.ts\`; score = max over squeezers of L1(softmax(x), ` +
  `softmax(squeezed x)), threshold at FPR 5% on test images 9000–9999, rates on test images 0–999, Linf eps 0.1 ` +
  `(PGD-20 with a random start, step 2.5·eps/20). The PGD-3 AT model (4 epochs, one-cycle lr 0.002, seed 1) ` +
  `trained in ${trainMinutes.toFixed(1)} min. Latency: median of squeezeScores per input.\n\n${table}\n\n` +
  notes.map((n) => `- ${n}`).join('\n') +
  '\n';
console.log(report);
await appendFile('bench/RESULTS.md', report);
