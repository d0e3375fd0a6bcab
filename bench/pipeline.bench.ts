// Pipeline latency on a real dev server: plan+data+release with approvals given the moment each stage waits.
// Prints a table and appends it to bench/RESULTS.md. Run with `npm run bench`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { appendFile, copyFile, mkdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DecisionRefused, sendDecision } from '../client/decisions.js';
import type { Policy } from '../policy/index.js';
import type { PipelineResult } from '../workflows/messages.js';
import { startBenchStack } from './bench-stack.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const APPROVERS: Record<string, string[]> = { plan: ['alice'], data: ['dana'], release: ['omar', 'carol'] };

const stack = await startBenchStack();
const { dir, key, client } = stack;

/** A policy file in the bench's policy source (the workers resolve it by reference), and its parsed form. */
async function policyFor(files: string[], name: string): Promise<{ policy: Policy; ref: string }> {
  const root = join(dir, name);
  await mkdir(root);
  for (const f of files) await copyFile(join(FASHION, f), join(root, f));
  const digest = (f: string) =>
    createHash('sha256')
      .update(readFileSync(join(root, f)))
      .digest('hex');
  const splits =
    files.length === 4
      ? 'train: { images: train-images-idx3-ubyte.gz, labels: train-labels-idx1-ubyte.gz }\n      test: { images: t10k-images-idx3-ubyte.gz, labels: t10k-labels-idx1-ubyte.gz }'
      : 'test: { images: t10k-images-idx3-ubyte.gz, labels: t10k-labels-idx1-ubyte.gz }';
  const text = `version: 1
name: bench-${name}
people: { alice: {}, dana: {}, omar: {}, carol: {} }
roles: { R1: { members: [dana] }, R3: { members: [alice] }, R5: { members: [carol] }, R7: { members: [omar] } }
stages: [plan, data, release]
artifacts:
  dataset:
    root: ${root}
    files:
${files.map((f) => `      - { path: ${f}, sha256: ${digest(f)} }`).join('\n')}
    splits:
      ${splits}
threatModel:
  assets: [{ id: data }]
  controls: [{ id: digests, mitigates: [{ asset: data, stride: STRIDE }] }]
channels: { cli: { publicKeyFile: keys/cli.pub } }
`;
  return stack.writePolicy(name, text);
}

try {
  let n = 0;
  let attempts = 0;

  /** Gives each approval as soon as the stage accepts it: retries while the stage is not yet waiting. */
  async function approve(workflowId: string, stage: string, person: string): Promise<void> {
    for (;;) {
      attempts++;
      try {
        await sendDecision(client, { workflowId, stage, person, decision: 'approve', keyPath: '', key });
        return;
      } catch (e) {
        if (!(e instanceof DecisionRefused) || !/not waiting/.test(e.message)) {
          console.error(`approve ${workflowId} ${stage} ${person}:`, (e as Error).message);
          throw e;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  async function onePipeline({ policy, ref }: { policy: Policy; ref: string }): Promise<number> {
    const id = `bench-${Date.now().toString(36)}-${n++}`;
    const t0 = performance.now();
    const handle = await stack.start(id, ref);
    for (const stage of policy.stages) for (const p of APPROVERS[stage.name]) await approve(id, stage.name, p);
    const r: PipelineResult = await handle.result();
    if (r.state !== 'passed') throw new Error(`pipeline ${id} ${r.state}: ${r.reason}`);
    return performance.now() - t0;
  }

  const q = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)];
  const rows: string[][] = [];
  const testSplit = await policyFor(['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'], 'test-split');
  const full = await policyFor(
    [
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
    ],
    'full',
  );
  await onePipeline(testSplit); // warm-up: workflow bundle and caches

  for (const [label, policy] of [
    ['full Fashion-MNIST (70k images)', full],
    ['test split (10k images)', testSplit],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < 10; i++) times.push(await onePipeline(policy));
    rows.push([
      `1 pipeline × 10, ${label}`,
      `${(q(times, 0.5) / 1000).toFixed(2)} s`,
      `${(q(times, 0.95) / 1000).toFixed(2)} s`,
      '—',
      '10/10',
    ]);
  }
  const before = attempts;
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: 50 }, () => onePipeline(testSplit)));
  const total = performance.now() - t0;
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  rows.push([
    '50 pipelines at once, test split',
    `${(q(ok, 0.5) / 1000).toFixed(2)} s`,
    `${(q(ok, 0.95) / 1000).toFixed(2)} s`,
    `${(total / 1000).toFixed(1)} s`,
    `${ok.length}/50`,
  ]);
  for (const r of results) if (r.status === 'rejected') console.error(String(r.reason));
  console.log(`decision attempts in the 50-pipeline run: ${attempts - before} for ${50 * 4} approvals`);

  const header = ['scenario', 'median', 'p95', 'total', 'completed'];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
  console.log(
    `\nPipeline latency (plan+data+release, approvals given as soon as each stage waits)\n${machine}\n\n${table}\n`,
  );
  await appendFile(
    'bench/RESULTS.md',
    `\n## Pipeline latency — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}; one CPU worker and one gpu-queue worker in one process; Temporal dev server ${'(in memory)'}.\n\n${table}\n`,
  );
} finally {
  await stack.stop();
}
