// Training throughput per defense, and inference latency of a standard versus an adversarially trained deployable
// model (the same graph, so any difference is noise). Prints a table and appends it to bench/RESULTS.md.
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { loadSplit } from '../engine/data/fashion.js';
import { forwardFlops } from '../engine/inspect.js';
import { createSession, floatTensor } from '../engine/runtime/session.js';
import { train, type Defense } from '../engine/train/trainer.js';
import { deployableModel, smallCnn, wideCnn, type Architecture } from '../engine/train/zoo.js';

const PEAK_GFLOPS = 294;
const all = await loadSplit('/usr/share/datasets/fashion-mnist', 'train', { limit: 6400 });
const subset = (n: number) => ({
  ...all,
  count: n,
  images: all.images.subarray(0, n * 784),
  labels: all.labels.subarray(0, n),
});
const forward = (arch: Architecture) =>
  forwardFlops(
    deployableModel(
      arch,
      new Map(arch.params.map((p) => [p.name, new Float32Array(p.dims.reduce((a, b) => a * b, 1))])),
    ),
  );
const fwd = forward(smallCnn);
const wideFwd = forward(wideCnn);
// FLOPs per training image: a weight-gradient step is about 3 forwards; each attack step adds an input-gradient
// pass (about 2 forwards). The wide CNN row is the recipe of the results table's best rows, on fewer images.
const cases: { label: string; arch: Architecture; images: number; defense: Defense; flops: number }[] = [
  { label: 'standard', arch: smallCnn, images: 6400, defense: { kind: 'none' }, flops: 3 * fwd },
  { label: 'FGSM-RS', arch: smallCnn, images: 6400, defense: { kind: 'fgsm-rs', eps: 0.1 }, flops: 3 * fwd + 2 * fwd },
  {
    label: 'PGD-7 AT',
    arch: smallCnn,
    images: 6400,
    defense: { kind: 'pgd', eps: 0.1, steps: 7 },
    flops: 3 * fwd + 7 * 2 * fwd,
  },
  {
    label: 'PGD-3 AT, wide CNN',
    arch: wideCnn,
    images: 1280,
    defense: { kind: 'pgd', eps: 0.1, steps: 3 },
    flops: 3 * wideFwd + 3 * 2 * wideFwd,
  },
];
const rows: string[][] = [];
const trained = new Map<string, Map<string, Float32Array>>();
for (const c of cases) {
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    const res = await train({ arch: c.arch, data: subset(c.images), epochs: 1, defense: c.defense, seed: 1 });
    runs.push(c.images / ((performance.now() - t0) / 1000));
    trained.set(c.label, res.deploy);
  }
  const ips = [...runs].sort((a, b) => a - b)[1];
  const gflops = (ips * c.flops) / 1e9;
  rows.push([c.label, `${Math.round(ips)}`, gflops.toFixed(1), `${((gflops / PEAK_GFLOPS) * 100).toFixed(1)}%`]);
}

async function latency(weights: Map<string, Float32Array>): Promise<number> {
  const s = await createSession(deployableModel(smallCnn, weights));
  const x = floatTensor(all.images.slice(0, 784), [1, 1, 28, 28]);
  for (let i = 0; i < 200; i++) await s.run({ input: x });
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    await s.run({ input: x });
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[times.length >> 1];
}
const standardLatency = await latency(trained.get('standard')!);
const defendedLatency = await latency(trained.get('PGD-7 AT')!);

const header = [
  'training (small CNN, 1 epoch on 6400 images; wide CNN on 1280)',
  'images/s (median of 3)',
  'GFLOP/s',
  'of fp32 peak',
];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const lat = `Inference latency, batch 1, median of 2000 runs: standard ${(standardLatency * 1000).toFixed(1)} µs, PGD-7 AT ${(defendedLatency * 1000).toFixed(1)} µs (ratio ${(defendedLatency / standardLatency).toFixed(3)}; the same graph, different weights).`;
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node 1.30.0`;
console.log(`\nTraining throughput\n${machine}\n\n${table}\n\n${lat}\n`);
await appendFile(
  'bench/RESULTS.md',
  `\n## Training throughput — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}. FLOPs per image: a weight-gradient step ≈ 3 forwards, each attack step ≈ 2 (${(fwd / 1e6).toFixed(2)} MFLOP per small-CNN forward, ${(wideFwd / 1e6).toFixed(1)} wide); peak ${PEAK_GFLOPS} GFLOP/s from ENGINE-NOTES.\n\n${table}\n\n${lat}\n`,
);
