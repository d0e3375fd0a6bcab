// FedAvg against centralised training in the same number of epochs: three clients on their own task queues of a
// real dev server, IID and non-IID (Dirichlet α = 0.5), each round one local epoch; the centralised run trains the
// same network on the whole split; then DP-FedAvg at two noise levels. Test accuracy on the 10,000 test images. Run
// with `npm run bench:federated`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { appendFile, copyFile, mkdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { startFederation } from '../client/federation.js';
import { loadSplit } from '../engine/data/fashion.js';
import { createSession } from '../engine/runtime/session.js';
import { accuracy, train } from '../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../engine/train/zoo.js';
import { startBenchStack } from './bench-stack.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const FILES = [
  'train-images-idx3-ubyte.gz',
  'train-labels-idx1-ubyte.gz',
  't10k-images-idx3-ubyte.gz',
  't10k-labels-idx1-ubyte.gz',
];
const CLIENTS = ['client-1', 'client-2', 'client-3'];
const ARCH = process.env.BENCH_ARCH ?? 'small-cnn';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LIMIT = process.env.BENCH_LIMIT ? Number(process.env.BENCH_LIMIT) : undefined;

const stack = await startBenchStack({ clients: CLIENTS });
const root = join(stack.dir, 'data');
await mkdir(root);
for (const f of FILES) await copyFile(join(FASHION, f), join(root, f));
const digest = (f: string) =>
  createHash('sha256')
    .update(readFileSync(join(root, f)))
    .digest('hex');

async function federation(name: string, partition: string, secure: boolean, dp = '') {
  const text = `version: 1
name: fed-${name}
people: { alice: {} }
roles: { R3: { members: [alice] } }
stages: [{ name: plan, approval: false }]
artifacts:
  dataset:
    root: ${root}
    files:
${FILES.map((f) => `      - { path: ${f}, sha256: ${digest(f)} }`).join('\n')}
    splits:
      train: { images: ${FILES[0]}, labels: ${FILES[1]} }
      test: { images: ${FILES[2]}, labels: ${FILES[3]} }
train:
  arch: ${ARCH}
  ${LIMIT ? `limit: ${LIMIT}` : ''}
  federated:
    clients:
${CLIENTS.map((c) => `      - { id: ${c}, publicKeyFile: keys/${c}.pub }`).join('\n')}
    rounds: ${ROUNDS}
    partition: ${partition}
    secureAggregation: ${secure}
${dp ? `    dp: ${dp}` : ''}
evaluate:
  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]
threatModel:
  assets: [{ id: data }]
  controls: [{ id: digests, mitigates: [{ asset: data, stride: STRIDE }] }]
`;
  const { ref } = await stack.writePolicy(`fed-${name}`, text);
  const started = performance.now();
  const handle = await startFederation(stack.client, {
    workflowId: `bench-fed-${name}-${Date.now()}`,
    policyRef: ref,
    key: stack.key,
  });
  const r = await handle.result();
  const seconds = (performance.now() - started) / 1000;
  const sizes = r.rounds[0].clients.map((c) => c.samples).join('/');
  return {
    epsilon: r.rounds[r.rounds.length - 1].privacy?.epsilon,
    accuracy: r.rounds[r.rounds.length - 1].testAccuracy!,
    seconds,
    sizes,
    curve: r.rounds.map((x) => x.testAccuracy!),
  };
}

async function centralised() {
  const arch = ARCHITECTURES[ARCH];
  const data = await loadSplit(root, 'train', { limit: LIMIT });
  const test = await loadSplit(root, 'test');
  const started = performance.now();
  const result = await train({ arch, data, epochs: ROUNDS, seed: 1 });
  const seconds = (performance.now() - started) / 1000;
  const session = await createSession(deployableModel(arch, result.deploy));
  const acc = await accuracy(session, test, arch.classes);
  await session.release();
  return { accuracy: acc, seconds };
}

// DP-FedAvg at clipping norm 1 and two noise multipliers, with secure aggregation (as a deployment would run it).
const DP = [0.01, 0.1];

try {
  const central = await centralised();
  const iid = await federation('iid', '{ kind: iid }', false);
  const secure = await federation('iid-secure', '{ kind: iid }', true);
  const skewed = await federation('dirichlet', '{ kind: dirichlet, alpha: 0.5 }', false);
  const private_ = [];
  for (const sigma of DP)
    private_.push({
      sigma,
      ...(await federation(
        `dp-${sigma}`,
        '{ kind: iid }',
        true,
        `{ clip: 1, noiseMultiplier: ${sigma}, delta: 1e-3 }`,
      )),
    });
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const row = (what: string, r: { accuracy: number; seconds: number }) =>
    `| ${what} | ${pct(r.accuracy)} | ${((r.accuracy - central.accuracy) * 100).toFixed(2)} | ` +
    `${r.seconds.toFixed(0)} s |`;
  const rows = [
    `| centralised, ${ROUNDS} epochs | ${pct(central.accuracy)} | — | ${central.seconds.toFixed(0)} s |`,
    row(`FedAvg, 3 IID clients (${iid.sizes})`, iid),
    row('FedAvg, 3 IID clients, secure aggregation', secure),
    row(`FedAvg, 3 clients, Dirichlet α = 0.5 (${skewed.sizes})`, skewed),
    ...private_.map((p) =>
      row(`DP-FedAvg, 3 IID, secure agg., clip 1, σ ${p.sigma}: ε ${p.epsilon!.toPrecision(3)} at δ 1e-3`, p),
    ),
  ];
  const table = [
    `\n## FedAvg vs centralised (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${ARCH}, ` +
      `${ROUNDS} rounds × 1 local epoch${LIMIT ? `, ${LIMIT} images` : ''})\n`,
    '| run | test accuracy | vs centralised (points) | wall time |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    `Per-round test accuracy: IID ${iid.curve.map(pct).join(' → ')}; ` +
      `Dirichlet ${skewed.curve.map(pct).join(' → ')}; ` +
      private_.map((p) => `DP σ ${p.sigma} ${p.curve.map(pct).join(' → ')}`).join('; ') +
      '.',
    '',
  ].join('\n');
  console.log(table);
  await appendFile(join(import.meta.dirname, 'RESULTS.md'), table);
} finally {
  await stack.stop();
}
