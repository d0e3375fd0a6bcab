// The engine against its PyTorch twin (bench/torch_twin.py) on the same workloads, run alternately in one process
// tree so both columns see the same machine: training throughput (small CNN standard, FGSM-RS, PGD-7; wide CNN
// PGD-3) and PGD-20 evaluation of the example model. Prints medians and the ratio, and appends them to
// bench/RESULTS.md. Run with `npm run bench:torch` (`-- --runs 5 --workloads pgd7,pgd20-eval --images 1280`).
// Without PyTorch (Debian: python3-torch, python3-onnx) the PyTorch column says so and the engine still runs.
import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import { runAttack } from '../engine/attacks/run.js';
import { AttackTarget } from '../engine/attacks/target.js';
import { loadSplit } from '../engine/data/fashion.js';
import { computeMetrics } from '../engine/metrics/metrics.js';
import { loadModel } from '../engine/onnx/model.js';
import { train, type Defense } from '../engine/train/trainer.js';
import { smallCnn, wideCnn, type Architecture } from '../engine/train/zoo.js';

const run = promisify(execFile);
const FASHION = '/usr/share/datasets/fashion-mnist';
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const runs = Number(arg('runs') ?? 5);
const images = arg('images') === undefined ? undefined : Number(arg('images'));
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a whole number ≥ 1, got ${arg('runs')}`);
if (images !== undefined && !(Number.isInteger(images) && images > 0))
  throw new Error(`--images: expected a whole number ≥ 1, got ${arg('images')}`);

interface Workload {
  label: string;
  /** The twin's --workload name. */
  twin: string;
  /** One engine run: images per second (and robust accuracy for evaluations). */
  engine: () => Promise<{ ips: number; robust?: number }>;
}

const trainSet = await loadSplit(FASHION, 'train', { limit: 6400 });
const subset = (n: number) => ({
  ...trainSet,
  count: n,
  images: trainSet.images.subarray(0, n * 784),
  labels: trainSet.labels.subarray(0, n),
});
const training = (label: string, twin: string, arch: Architecture, n: number, defense: Defense): Workload => ({
  label,
  twin,
  engine: async () => {
    const count = images ?? n;
    const t0 = performance.now();
    await train({ arch, data: subset(count), epochs: 1, defense, seed: 1 });
    return { ips: count / ((performance.now() - t0) / 1000) };
  },
});
const testSet = await loadSplit(FASHION, 'test');
const target = await AttackTarget.create(await loadModel('examples/fashion-mnist/model.onnx'));
const all: Workload[] = [
  training('standard training, small CNN', 'standard', smallCnn, 6400, { kind: 'none' }),
  training('FGSM-RS training, small CNN', 'fgsm-rs', smallCnn, 6400, { kind: 'fgsm-rs', eps: 0.1 }),
  training('PGD-7 AT, small CNN', 'pgd7', smallCnn, 6400, { kind: 'pgd', eps: 0.1, steps: 7 }),
  training('PGD-3 AT, wide CNN', 'pgd3-wide', wideCnn, 1280, { kind: 'pgd', eps: 0.1, steps: 3 }),
  {
    label: 'PGD-20 evaluation, example model',
    twin: 'pgd20-eval',
    engine: async () => {
      const data = { ...testSet, count: images ?? testSet.count };
      const t0 = performance.now();
      const results = await runAttack(
        target,
        data,
        { attack: 'pgd', eps: 0.1, steps: 20 },
        { range: { min: 0, max: 1 } },
      );
      const ips = data.count / ((performance.now() - t0) / 1000);
      return { ips, robust: computeMetrics(results, 10).robust_accuracy };
    },
  },
];
const wanted = arg('workloads')?.split(',');
const unknown = wanted?.filter((w) => !all.some((x) => x.twin === w));
if (unknown?.length)
  throw new Error(`--workloads: unknown ${unknown.join(', ')}; expected ${all.map((w) => w.twin).join(', ')}`);
const workloads = wanted ? all.filter((w) => wanted.includes(w.twin)) : all;

/**
 * A Python that imports torch and onnx: SECMLOPS_PYTHON, python3 on the PATH, or Debian's own (python3-torch installs
 * into /usr/bin/python3's packages, which a pyenv or venv python3 first on the PATH does not see). Otherwise why not.
 */
async function findPython(): Promise<{ python?: string; why?: string }> {
  const tried: string[] = [];
  for (const python of [process.env.SECMLOPS_PYTHON, 'python3', '/usr/bin/python3']) {
    if (!python) continue;
    try {
      await run(python, ['-c', 'import torch, onnx'], { timeout: 120_000 });
      return { python };
    } catch (e) {
      tried.push(`${python}: ${(e as Error).message.trim().split('\n').pop()}`);
    }
  }
  return { why: `PyTorch not available (${tried.join('; ')})` };
}

async function twinRun(w: Workload): Promise<{ ips: number; robust?: number; version: string }> {
  const args = [
    'bench/torch_twin.py',
    '--workload',
    w.twin,
    '--runs',
    '1',
    ...(images ? ['--images', `${images}`] : []),
  ];
  const { stdout } = await run(python!, args, { timeout: 3600_000, maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { median: number; robust_accuracy?: number; torch: string };
  return { ips: r.median, robust: r.robust_accuracy, version: r.torch };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const { python, why: missing } = await findPython();
if (missing) console.log(`${missing}: the PyTorch column is left empty.`);
let version = '';
const rows: string[][] = [];
for (const w of workloads) {
  const engine: number[] = [];
  const twin: number[] = [];
  let robust = '';
  await w.engine(); // warm-up: session caches, JIT
  for (let r = 0; r < runs; r++) {
    const e = await w.engine();
    engine.push(e.ips);
    if (e.robust !== undefined) robust = `engine ${(100 * e.robust).toFixed(2)}%`;
    if (missing) continue;
    const t = await twinRun(w);
    twin.push(t.ips);
    version = t.version;
    if (t.robust !== undefined) robust += `, PyTorch ${(100 * t.robust).toFixed(2)}%`;
    console.log(`${w.label}, run ${r + 1}/${runs}: engine ${e.ips.toFixed(0)} img/s, PyTorch ${t.ips.toFixed(0)}`);
  }
  const [e, t] = [median(engine), twin.length ? median(twin) : NaN];
  rows.push([
    w.label,
    `${Math.round(e)}`,
    Number.isNaN(t) ? '—' : `${Math.round(t)}`,
    Number.isNaN(t) ? '—' : `${(e / t).toFixed(2)}×`,
    robust || '—',
  ]);
}
const header = ['workload', 'engine img/s', 'PyTorch CPU img/s', 'ratio', 'robust accuracy'];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const how = `medians of ${runs} runs each, alternating${version ? `; PyTorch ${version}, 2 threads` : ''}`;
console.log(`\nEngine against PyTorch (${how})\n${machine}\n\n${table}\n`);
await appendFile(
  'bench/RESULTS.md',
  `\n## Engine against PyTorch — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}; ${how}` +
    `${images ? `; ${images} images a run` : ''}.\n\n${table}\n`,
);
