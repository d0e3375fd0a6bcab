// FGSM and PGD-20 throughput on the Fashion-MNIST test set with the example CNN. Prints a table and appends it to
// bench/RESULTS.md. Run with `npm run bench`.
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { runAttack, type AttackSpec } from '../engine/attacks/run.js';
import { AttackTarget } from '../engine/attacks/target.js';
import { loadSplit } from '../engine/data/fashion.js';
import { forwardFlops } from '../engine/inspect.js';
import { computeMetrics } from '../engine/metrics/metrics.js';
import { loadModel } from '../engine/onnx/model.js';

/** fp32 peak of this machine kind (2 cores, AVX-512), measured in ENGINE-NOTES.md. */
const PEAK_GFLOPS = 294;
const model = await loadModel('examples/fashion-mnist/model.onnx');
const data = await loadSplit('/usr/share/datasets/fashion-mnist', 'test');
const target = await AttackTarget.create(model);
const fwd = forwardFlops(model);
// An input-gradient pass costs a forward plus a backward of about the same size (each Conv/Gemm's input gradient is
// a transposed product of the same size); runAttack adds two forwards per image (clean and adversarial logits),
// and PGD one more to pick its result.
const cases: { label: string; spec: AttackSpec; flopsPerImage: number }[] = [
  { label: 'FGSM eps 0.1', spec: { attack: 'fgsm', eps: 0.1 }, flopsPerImage: 2 * fwd + 2 * fwd },
  { label: 'PGD-20 eps 0.1', spec: { attack: 'pgd', eps: 0.1, steps: 20 }, flopsPerImage: 20 * 2 * fwd + 3 * fwd },
];
const rows: string[][] = [];
for (const c of cases) {
  await runAttack(target, { ...data, count: 512 }, c.spec, { range: { min: 0, max: 1 } }); // warm-up
  const runs: number[] = [];
  let robust = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    const results = await runAttack(target, data, c.spec, { range: { min: 0, max: 1 } });
    runs.push((performance.now() - t0) / 1000);
    robust = computeMetrics(results, 10).robust_accuracy;
  }
  const median = [...runs].sort((a, b) => a - b)[1];
  const ips = data.count / median;
  const gflops = (ips * c.flopsPerImage) / 1e9;
  rows.push([
    c.label,
    `${data.count}`,
    `${median.toFixed(2)} s`,
    `${Math.round(ips)}`,
    gflops.toFixed(1),
    `${((gflops / PEAK_GFLOPS) * 100).toFixed(1)}%`,
    `${(robust * 100).toFixed(2)}%`,
  ]);
}
const header = ['attack', 'images', 'median of 3', 'images/s', 'GFLOP/s', 'of fp32 peak', 'robust accuracy'];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node 1.30.0, 2 threads`;
console.log(
  `\nAttack throughput, example small CNN (${(fwd / 1e6).toFixed(2)} MFLOP per forward)\n${machine}\n\n${table}\n`,
);
await appendFile(
  'bench/RESULTS.md',
  `\n## Attack throughput — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}. Example small CNN, ${(fwd / 1e6).toFixed(2)} MFLOP per forward; FLOPs per image count gradient passes as 2 forwards; peak ${PEAK_GFLOPS} GFLOP/s from ENGINE-NOTES.\n\n${table}\n`,
);
