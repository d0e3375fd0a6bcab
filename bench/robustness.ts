// The README's results table: each recipe trained on all 60,000 training images, then clean accuracy and PGD-20
// robust accuracy on all 10,000 test images (Linf eps 0.1, step 2.5·eps/20, random start). Hours of CPU for the
// whole table, so it is not part of `npm run bench`:
//   npm run results                  # every row
//   npm run results -- wide-fgsm-rs  # chosen rows, by id
// Each finished row is printed and appended to bench/RESULTS.md at once, so a long run keeps what it measured.
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { runAttack } from '../engine/attacks/run.js';
import { AttackTarget } from '../engine/attacks/target.js';
import { holdOutValidation, loadSplit } from '../engine/data/fashion.js';
import { computeMetrics } from '../engine/metrics/metrics.js';
import { createSession } from '../engine/runtime/session.js';
import { accuracy, train, type Defense, type TrainOptions } from '../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../engine/train/zoo.js';

const DATA = '/usr/share/datasets/fashion-mnist';
const EPS = 0.1;

interface Recipe {
  id: string;
  arch: string;
  defense: Defense;
  epochs: number;
  earlyStop?: boolean;
  schedule?: TrainOptions['schedule'];
  lr?: number;
}

const fast = { schedule: 'one-cycle', lr: 2e-3 } as const;
const RECIPES: Recipe[] = [
  { id: 'small-standard', arch: 'small-cnn', defense: { kind: 'none' }, epochs: 8 },
  {
    id: 'small-fgsm-rs',
    arch: 'small-cnn',
    defense: { kind: 'fgsm-rs', eps: EPS },
    epochs: 15,
    earlyStop: true,
    ...fast,
  },
  { id: 'small-pgd', arch: 'small-cnn', defense: { kind: 'pgd', eps: EPS, steps: 7 }, epochs: 15, ...fast },
  {
    id: 'small-pgd-es',
    arch: 'small-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 7 },
    epochs: 15,
    earlyStop: true,
    ...fast,
  },
  {
    id: 'small-trades',
    arch: 'small-cnn',
    defense: { kind: 'trades', eps: EPS, steps: 5, beta: 6 },
    epochs: 10,
    earlyStop: true,
    ...fast,
  },
  { id: 'wide-standard', arch: 'wide-cnn', defense: { kind: 'none' }, epochs: 4, ...fast },
  { id: 'wide-fgsm-rs', arch: 'wide-cnn', defense: { kind: 'fgsm-rs', eps: EPS }, epochs: 4, ...fast },
  {
    id: 'wide-pgd3-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3 },
    epochs: 5,
    earlyStop: true,
    ...fast,
  },
  {
    id: 'wide-pgd4-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 4 },
    epochs: 3,
    earlyStop: true,
    ...fast,
  },
  {
    id: 'wide-pgd3-lr1-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3 },
    epochs: 3,
    earlyStop: true,
    schedule: 'one-cycle',
    lr: 1e-3,
  },
  {
    id: 'wide-pgd3-lr1-4ep-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3 },
    epochs: 4,
    earlyStop: true,
    schedule: 'one-cycle',
    lr: 1e-3,
  },
  {
    id: 'wide-pgd3-lr1-5ep-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3 },
    epochs: 5,
    earlyStop: true,
    schedule: 'one-cycle',
    lr: 1e-3,
  },
  {
    id: 'wide-pgd3-s05-lr15-5ep-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3, stepSize: 0.05 },
    epochs: 5,
    earlyStop: true,
    schedule: 'one-cycle',
    lr: 1.5e-3,
  },
  {
    id: 'wide-pgd3-s05-lr15-5ep',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3, stepSize: 0.05 },
    epochs: 5,
    schedule: 'one-cycle',
    lr: 1.5e-3,
  },
  {
    id: 'wide-pgd2-s05-lr15-5ep',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 2, stepSize: 0.05 },
    epochs: 5,
    schedule: 'one-cycle',
    lr: 1.5e-3,
  },
  {
    id: 'wide-pgd3-s05-lr15-4ep',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3, stepSize: 0.05 },
    epochs: 4,
    schedule: 'one-cycle',
    lr: 1.5e-3,
  },
  {
    id: 'wide-pgd3-s05-lr2-4ep-es',
    arch: 'wide-cnn',
    defense: { kind: 'pgd', eps: EPS, steps: 3, stepSize: 0.05 },
    epochs: 4,
    earlyStop: true,
    schedule: 'one-cycle',
    lr: 2e-3,
  },
  { id: 'mlp-standard', arch: 'mlp', defense: { kind: 'none' }, epochs: 8 },
  { id: 'mlp-fgsm-rs', arch: 'mlp', defense: { kind: 'fgsm-rs', eps: EPS }, epochs: 15, earlyStop: true, ...fast },
  { id: 'mlp-pgd-es', arch: 'mlp', defense: { kind: 'pgd', eps: EPS, steps: 7 }, epochs: 15, earlyStop: true, ...fast },
  {
    id: 'mlp-trades',
    arch: 'mlp',
    defense: { kind: 'trades', eps: EPS, steps: 5, beta: 6 },
    epochs: 10,
    earlyStop: true,
    ...fast,
  },
];

function describe(r: Recipe): string {
  const d = r.defense;
  const defense =
    d.kind === 'none'
      ? 'standard'
      : d.kind === 'fgsm-rs'
        ? 'FGSM-RS'
        : d.kind === 'pgd'
          ? `PGD-${d.steps ?? 7} AT`
          : `TRADES β=${d.beta ?? 6}, ${d.steps ?? 7} steps`;
  const step = d.kind !== 'none' && d.stepSize !== undefined ? ` (step ${d.stepSize})` : '';
  return `${defense}${step}, ${r.epochs} epochs${r.earlyStop ? ', ES' : ''}`;
}

function command(r: Recipe): string {
  const d = r.defense;
  const flags = [`--arch ${r.arch}`];
  if (d.kind !== 'none') flags.push(`--defense ${d.kind} --eps ${d.eps}`);
  if ((d.kind === 'pgd' || d.kind === 'trades') && d.steps !== undefined) flags.push(`--pgd-steps ${d.steps}`);
  if (d.kind === 'trades' && d.beta !== undefined) flags.push(`--beta ${d.beta}`);
  if (d.kind !== 'none' && d.stepSize !== undefined) flags.push(`--step-size ${d.stepSize}`);
  flags.push(`--epochs ${r.epochs}`);
  if (r.schedule) flags.push(`--schedule ${r.schedule} --lr ${r.lr}`);
  if (r.earlyStop) flags.push('--early-stop');
  return `train ${flags.join(' ')}`;
}

async function measure(r: Recipe): Promise<string[]> {
  const arch = ARCHITECTURES[r.arch];
  const { data, validation } = holdOutValidation(await loadSplit(DATA, 'train'), !!r.earlyStop);
  const test = await loadSplit(DATA, 'test');
  const started = performance.now();
  const result = await train({
    arch,
    data,
    epochs: r.epochs,
    defense: r.defense,
    schedule: r.schedule,
    lr: r.lr,
    earlyStop: r.earlyStop ? { validation, eps: EPS, steps: 10 } : undefined,
    onEpoch: (e) =>
      console.error(
        `  ${r.id} epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, accuracy ${(e.accuracy * 100).toFixed(2)}%${e.robustValidation === undefined ? '' : `, robust validation ${(e.robustValidation * 100).toFixed(2)}%`}, ${e.seconds.toFixed(0)} s`,
      ),
  });
  const minutes = (performance.now() - started) / 60000;
  const model = deployableModel(arch, result.deploy);
  const clean = await accuracy(await createSession(model), test, arch.classes);
  const attacked = await runAttack(
    await AttackTarget.create(model),
    test,
    { attack: 'pgd', eps: EPS, steps: 20 },
    { range: { min: 0, max: 1 }, seed: 1 },
  );
  const robust = computeMetrics(attacked, arch.classes).robust_accuracy;
  const kept = result.bestEpoch ? ` (kept epoch ${result.bestEpoch})` : '';
  // The project's target: at least 86% clean and 72% under PGD-20, trained within 20 minutes on this machine.
  const target = clean >= 0.86 && robust >= 0.72 ? (minutes <= 20 ? 'yes' : 'accuracy only (over 20 min)') : 'no';
  return [
    r.arch,
    describe(r) + kept,
    `\`${command(r)}\``,
    `${(clean * 100).toFixed(2)}%`,
    `${(robust * 100).toFixed(2)}%`,
    `${minutes.toFixed(1)} min`,
    target,
  ];
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((id) => !RECIPES.some((r) => r.id === id));
if (unknown.length > 0)
  throw new Error(`unknown recipe ${unknown.join(', ')}; known: ${RECIPES.map((r) => r.id).join(', ')}`);
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const header =
  '| arch | training | command | clean | PGD-20 | training time | ≥ 86 / ≥ 72 in ≤ 20 min |\n| --- | --- | --- | --- | --- | --- | --- |';
await appendFile(
  'bench/RESULTS.md',
  `\n## Robustness table — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}; all 10,000 test images, Linf eps ${EPS}, PGD-20 with a random start.\n\n${header}\n`,
);
console.log(header);
for (const r of RECIPES.filter((x) => wanted.length === 0 || wanted.includes(x.id))) {
  const row = `| ${(await measure(r)).join(' | ')} |`;
  console.log(row);
  await appendFile('bench/RESULTS.md', `${row}\n`);
}
