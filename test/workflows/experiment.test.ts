// `secmlops experiment --quick` end to end on the dev server: the committed grid's every cell as a child workflow,
// the results file, the Markdown table and the SVG chart; and bad experiment files refused by path, exit 2.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { experimentCommand } from '../../cli/experiment-command.js';
import type { CellResult } from '../../workflows/experiment.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { startStack, type Stack } from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;

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
    const log = console.log;
    const lines: string[] = [];
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      await experimentCommand(async () => stack.client, 'examples/fashion-mnist/experiment.yaml', { quick: true, out });
    } finally {
      console.log = log;
    }
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
