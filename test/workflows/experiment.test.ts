// `secmlops experiment --quick` end to end on the dev server: the committed grid's every cell as a child workflow,
// the results file, the Markdown table and the SVG chart; and bad experiment files refused by path, exit 2.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { experimentCommand } from '../../cli/experiment-command.js';
import { parseExperiment } from '../../experiment/spec.js';
import { cellOrder, type CellResult } from '../../workflows/experiment.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { startStack, type Stack } from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;
/** The quick run's results folder, which the --resume test continues. */
let quickOut: string | undefined;

async function quiet<T>(lines: string[], run: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return await run();
  } finally {
    console.log = log;
  }
}

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
});
afterAll(async () => {
  await stack?.stop();
});

describe('secmlops experiment', () => {
  test('--quick runs the committed grid and writes results.json, the table and the chart', async () => {
    const out = await mkdtemp(join(tmpdir(), 'secmlops-experiment-'));
    const lines: string[] = [];
    await quiet(lines, () =>
      experimentCommand(async () => stack.client, 'examples/fashion-mnist/experiment.yaml', { quick: true, out }),
    );
    quickOut = out;
    const saved = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { results: CellResult[] };
    expect(saved.results).toHaveLength(25);
    for (const r of saved.results) {
      expect(r.images).toBe(200);
      expect(r.robustAccuracy).toBeGreaterThanOrEqual(0);
      expect(r.robustAccuracy).toBeLessThanOrEqual(r.cleanAccuracy);
      expect(r.safetyCritical.missRate).toBeGreaterThanOrEqual(0);
    }
    const cell = (d: string, a: string) => saved.results.find((r) => r.defense === d && r.attack === a)!;
    // Cells that train alike share one model; the full policy's guard and sanitisation are measured.
    expect(cell('none', 'fgsm').model.sha256).toBe(cell('none', 'deepfool').model.sha256);
    expect(cell('none', 'poisoning').model.sha256).not.toBe(cell('none', 'fgsm').model.sha256);
    expect(cell('full', 'fgsm').model.sha256).toBe(cell('es-at', 'fgsm').model.sha256);
    expect(cell('full', 'fgsm').guard?.flagged).toBeGreaterThan(0);
    expect(cell('full', 'poisoning').model.sanitised?.poisoned).toBeGreaterThan(0);
    // DeepFool runs until the label flips: almost nothing stays robust.
    expect(cell('none', 'deepfool').robustAccuracy).toBeLessThan(0.1);
    const table = await readFile(join(out, 'results.md'), 'utf8');
    expect(table).toContain('| full policy |');
    expect(table).toContain('poisoning+deepfool: miss / robust');
    const svg = await readFile(join(out, 'chart.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<rect x=/g)?.length).toBeGreaterThanOrEqual(50);
    expect(lines.some((l) => l.startsWith('[25/25]'))).toBe(true);
  }, 900_000);

  test('--resume runs only the cells an interrupted run did not save; another experiment is refused', async () => {
    const out = quickOut!;
    const file = join(out, 'results.json');
    const first = JSON.parse(await readFile(file, 'utf8')) as { complete: boolean; results: CellResult[] };
    expect(first.complete).toBe(true);
    // As a run stopped after 20 cells leaves it: the CutMix cells missing.
    await writeFile(
      file,
      JSON.stringify({ ...first, complete: false, results: first.results.filter((r) => r.defense !== 'cutmix') }),
    );
    const lines: string[] = [];
    const yaml = 'examples/fashion-mnist/experiment.yaml';
    await quiet(lines, () => experimentCommand(async () => stack.client, yaml, { quick: true, out, resume: true }));
    expect(lines[0]).toContain('20 kept from');
    const ran = lines.filter((l) => /^\[\d+\/25\]/.test(l));
    expect(ran.map((l) => l.slice(0, 9))).toEqual(['[21/25] c', '[22/25] c', '[23/25] c', '[24/25] c', '[25/25] c']);
    const saved = JSON.parse(await readFile(file, 'utf8')) as {
      complete: boolean;
      runs: unknown[];
      results: CellResult[];
    };
    expect(saved.complete).toBe(true);
    expect(saved.runs).toHaveLength(2);
    expect(saved.results).toHaveLength(25);
    expect(new Set(saved.results.map((r) => `${r.defense}/${r.attack}`)).size).toBe(25);

    const other = join(fx.dir, 'other-experiment.yaml');
    await writeFile(other, (await readFile(yaml, 'utf8')).replace(/^eps: .*$/m, 'eps: 0.2'));
    await expect(
      experimentCommand(async () => stack.client, other, { quick: true, out, resume: true }),
    ).rejects.toThrow(/measured another experiment \(eps differ\)/);
  }, 600_000);

  test('one model’s cells run back to back, quick models first, the full policy beside ES+AT on clean data', async () => {
    const spec = parseExperiment(await readFile('examples/fashion-mnist/experiment.yaml', 'utf8'), 'x.yaml');
    const order = cellOrder(spec, true).map((c) => `${c.defense}/${c.attack}`);
    expect(order).toHaveLength(25);
    expect(new Set(order).size).toBe(25);
    expect(order.slice(0, 6)).toEqual([
      'none/fgsm',
      'none/deepfool',
      'cutmix/fgsm',
      'cutmix/deepfool',
      'distillation/fgsm',
      'distillation/deepfool',
    ]);
    expect(order.slice(6, 9)).toEqual(['none/poisoning', 'none/poisoning+fgsm', 'none/poisoning+deepfool']);
    // Then the adversarially trained models: ES+AT on clean data (the full policy's clean cells use it), then each
    // on poisoned data.
    expect(order.slice(15, 19)).toEqual(['es-at/fgsm', 'es-at/deepfool', 'full/fgsm', 'full/deepfool']);
    expect(order.slice(-3)).toEqual(['full/poisoning', 'full/poisoning+fgsm', 'full/poisoning+deepfool']);
    // Runs begun before the order changed replay the attacks-outer order.
    expect(
      cellOrder(spec, false)
        .slice(0, 2)
        .map((c) => `${c.defense}/${c.attack}`),
    ).toEqual(['none/poisoning', 'cutmix/poisoning']);
  });

  test.each([
    ['defenses: [none, adversarial-dropout]', 'defenses[1]: expected one of none, cutmix, es-at, distillation, full'],
    ['attacks: [fgsm, carlini]', 'attacks[1]: expected one of poisoning, fgsm, deepfool'],
    ['cutmix: { alpha: 0 }', 'cutmix.alpha: expected a value above 0, got 0'],
    ['distillation: { temperature: 0 }', 'distillation.temperature: expected a value above 0, got 0'],
  ])('%s is refused by path with exit 2', async (line, message) => {
    const text = (await readFile('examples/fashion-mnist/experiment.yaml', 'utf8')).replace(
      new RegExp(`^${line.split(':')[0]}:.*$`, 'm'),
      line,
    );
    const file = join(fx.dir, 'bad-experiment.yaml');
    await writeFile(file, text);
    const r = spawnSync(process.execPath, [resolve('bin/secmlops.js'), 'experiment', file], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
  });

  test('secmlops federated refuses fewer than 2 clients or a quorum above them by path, exit 2', async () => {
    const k1 = '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
    const k2 = 'PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=';
    const policy = (federated: string) => `version: 1
name: fed
people: { alice: {} }
stages: [{ name: plan, approval: false }]
roles: { R3: { members: [alice] } }
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { train: { images: i.gz, labels: l.gz } }
train: { arch: mlp, federated: { rounds: 1, ${federated} } }
`;
    const cases: [string, string][] = [
      [`clients: [{ id: client-1, publicKey: '${k1}' }]`, 'train.federated.clients: a federation needs at least 2'],
      [
        `quorum: 3, clients: [{ id: client-1, publicKey: '${k1}' }, { id: client-2, publicKey: '${k2}' }]`,
        'train.federated.quorum: a quorum of 3 is more than the 2 clients listed',
      ],
    ];
    for (const [federated, message] of cases) {
      const file = join(fx.dir, 'bad-federated.yaml');
      await writeFile(file, policy(federated));
      const r = spawnSync(process.execPath, [resolve('bin/secmlops.js'), 'federated', '--policy', file], {
        encoding: 'utf8',
      });
      expect(r.stderr).toContain(message);
      expect(r.status).toBe(2);
    }
  });
});
