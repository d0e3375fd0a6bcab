// Data poisoning on the full Fashion-MNIST training set (60,000 images): how well each detector finds BadNets and
// label-flip poison, what sanitising does to the backdoor and to clean accuracy after retraining, and how long the
// whole data stage takes with detection on a real dev server. Prints tables and appends them to bench/RESULTS.md.
// Run with `npm run bench:poison` (about 15 minutes on 2 cores).
import { createHash } from 'node:crypto';
import { appendFile, copyFile, mkdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { AttackTarget } from '../engine/attacks/target.js';
import { loadSplit, readPair, toImageSet, type ImageSet } from '../engine/data/fashion.js';
import { writeIdxGz } from '../engine/data/idx-write.js';
import { poison, type PoisonSpec, type RawSet } from '../engine/poison/attacks.js';
import { backdoorSuccess } from '../engine/poison/backdoor.js';
import { activationClustering, activations, scoreDetection, spectralSignatures } from '../engine/poison/detect.js';
import { createSession } from '../engine/runtime/session.js';
import { accuracy, train } from '../engine/train/trainer.js';
import { deployableModel, smallCnn } from '../engine/train/zoo.js';
import { startBenchStack } from './bench-stack.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const FILES = {
  images: 'train-images-idx3-ubyte.gz',
  labels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
};
const REFERENCE_EPOCHS = 4;
const RETRAIN_EPOCHS = 5;
const TRIGGER = { target: 0, patch: 3, position: 'bottom-right' as const, value: 255 };
const seconds = (t0: number) => (performance.now() - t0) / 1000;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

const clean = await readPair({ images: join(FASHION, FILES.images), labels: join(FASHION, FILES.labels) }, 10);
const test = await loadSplit(FASHION, 'test');

/** Reference model on the suspect set, its activations, then both detectors; times each phase. */
async function detectBoth(label: string, set: RawSet, truth: number[], rate: number): Promise<string[][]> {
  const data = toImageSet(set);
  let t0 = performance.now();
  const r = await train({ arch: smallCnn, data, epochs: REFERENCE_EPOCHS, seed: 1 });
  const trainS = seconds(t0);
  t0 = performance.now();
  const acts = await activations(deployableModel(smallCnn, r.deploy), data);
  const actS = seconds(t0);
  const rows: string[][] = [];
  for (const method of ['spectral', 'activation-clustering'] as const) {
    t0 = performance.now();
    const d =
      method === 'spectral'
        ? spectralSignatures(acts, data.labels, 10, rate, 1)
        : activationClustering(acts, data.labels, 10, { seed: 1 });
    const s = scoreDetection(d.flagged, truth, data.count);
    rows.push([
      label,
      method,
      `${d.flagged.length}`,
      pct(s.recall),
      pct(s.false_positive_rate),
      pct(s.precision),
      `${trainS.toFixed(0)} + ${actS.toFixed(0)} + ${seconds(t0).toFixed(1)} s`,
    ]);
    console.error(rows[rows.length - 1].join(' | '));
  }
  return rows;
}

/** A small CNN trained on the set; its clean test accuracy and the trigger's success rate on the test set. */
async function retrain(label: string, set: ImageSet): Promise<string[]> {
  const t0 = performance.now();
  const r = await train({ arch: smallCnn, data: set, epochs: RETRAIN_EPOCHS, seed: 1 });
  const model = deployableModel(smallCnn, r.deploy);
  const acc = await accuracy(await createSession(model), test, 10);
  const target = await AttackTarget.create(model);
  const b = await backdoorSuccess((x, n) => target.logits(x, n), 10, test, TRIGGER);
  const row = [
    label,
    `${set.count}`,
    pct(acc),
    pct(b.success_rate),
    pct(b.baseline_rate),
    `${seconds(t0).toFixed(0)} s`,
  ];
  console.error(row.join(' | '));
  return row;
}

const badnets: PoisonSpec = { kind: 'badnets', rate: 0.05, seed: 1, ...TRIGGER };
const bad = poison(clean, badnets, 10);
const flip = poison(clean, { kind: 'label-flip', rate: 0.1, seed: 1 }, 10);
const detection = [
  ...(await detectBoth('BadNets 5%, 3×3 white patch bottom-right → class 0', { ...clean, ...bad }, bad.indices, 0.05)),
  ...(await detectBoth('label flipping 10%, random', { ...clean, ...flip }, flip.indices, 0.1)),
];

// Sanitised as the data stage does it by default: activation clustering on a reference model of 4 epochs.
const badSet = toImageSet({ ...clean, ...bad });
const ref = await train({ arch: smallCnn, data: badSet, epochs: REFERENCE_EPOCHS, seed: 1 });
const flagged = activationClustering(
  await activations(deployableModel(smallCnn, ref.deploy), badSet),
  badSet.labels,
  10,
  { seed: 1 },
).flagged;
const removed = new Set(flagged);
const keep = [...Array(clean.count).keys()].filter((i) => !removed.has(i));
const pixels = clean.rows * clean.cols;
const sanitised = {
  ...clean,
  count: keep.length,
  images: new Uint8Array(keep.length * pixels),
  labels: Uint8Array.from(keep, (i) => bad.labels[i]),
};
keep.forEach((i, k) => sanitised.images.set(bad.images.subarray(i * pixels, (i + 1) * pixels), k * pixels));
const retraining = [
  await retrain('clean training set', toImageSet(clean)),
  await retrain('BadNets-poisoned, undefended', badSet),
  await retrain(`poisoned, sanitised (activation clustering removed ${flagged.length})`, toImageSet(sanitised)),
];

// The whole data stage (manifest, validation of both splits, detection and the sanitised copy) on a dev server.
const stack = await startBenchStack();
let stageRow: string[];
try {
  const root = join(stack.dir, 'poisoned');
  await mkdir(root);
  await writeIdxGz(join(root, FILES.images), [clean.count, clean.rows, clean.cols], bad.images);
  await writeIdxGz(join(root, FILES.labels), [clean.count], bad.labels);
  for (const f of [FILES.testImages, FILES.testLabels]) await copyFile(join(FASHION, f), join(root, f));
  const { readFile } = await import('node:fs/promises');
  const digest = async (f: string) =>
    createHash('sha256')
      .update(await readFile(join(root, f)))
      .digest('hex');
  const pins = await Promise.all(
    Object.values(FILES).map(async (f) => `      - { path: ${f}, sha256: ${await digest(f)} }`),
  );
  const { ref: policyRef } = await stack.writePolicy(
    'poison',
    `version: 1
name: bench-poison
people: { dana: {} }
roles: { R1: { members: [dana] } }
stages: [{ name: data, approval: false }]
artifacts:
  dataset:
    root: ${root}
    files:
${pins.join('\n')}
    splits:
      train: { images: ${FILES.images}, labels: ${FILES.labels} }
      test: { images: ${FILES.testImages}, labels: ${FILES.testLabels} }
data:
  poisoning: { method: activation-clustering }
threatModel:
  assets: [{ id: data }]
  controls: [{ id: digests, mitigates: [{ asset: data, stride: STRIDE }] }]
channels: { cli: { publicKeyFile: keys/cli.pub } }
`,
  );
  const t0 = performance.now();
  const r = await (await stack.start(`bench-poison-${Date.now().toString(36)}`, policyRef)).result();
  const total = seconds(t0);
  if (r.state !== 'passed') throw new Error(`the data stage ${r.state}: ${r.reason}`);
  const m = r.stages[0].metrics;
  stageRow = [
    'data stage, 60,000 + 10,000 images, activation clustering (reference model 4 epochs)',
    `${total.toFixed(0)} s`,
    `${m['data.poison.flagged']} flagged (${pct(m['data.poison.flagged_fraction'])})`,
  ];
  console.error(stageRow.join(' | '));
} finally {
  await stack.stop();
}

const table = (header: string[], rows: string[][]) =>
  [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const report = `
## Data poisoning — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC

${machine}. \`npm run bench:poison\`. Full training set (60,000 images), poisoned with \`engine/poison\` at seed 1.
Reference models: small CNN, ${REFERENCE_EPOCHS} epochs, seed 1; spectral signatures flag 1.5 × the poison rate
of every class. Time = reference training + activation pass + detector.

${table(['poison', 'detector', 'flagged', 'recall', 'false-positive rate', 'precision', 'time'], detection)}

Retraining (small CNN, ${RETRAIN_EPOCHS} epochs, Adam 1e-3, batch 128, seed 1), measured on the 10,000 test images;
the backdoor success rate is over the 9,000 test images of other classes, stamped with the trigger.

${table(['trained on', 'images', 'clean accuracy', 'backdoor success', 'target rate without trigger', 'time'], retraining)}

${table(['whole stage on a dev server', 'wall time', 'removed'], [stageRow])}
`;
console.log(report);
await appendFile('bench/RESULTS.md', report);
