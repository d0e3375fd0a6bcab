import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { loadPolicy } from '../../cli/load-policy.js';
import { PolicyError, parsePolicy, quorumMet, threatMatrix, type Approval, type Vote } from '../../policy/index.js';

// RFC 8032's first test key: a real Ed25519 public key (32 bytes of 7 are not a point on the curve).
const KEY = '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
const VALID = `
version: 1
name: demo
people:
  alice: { github: alice-sec }
  omar: { github: omar-owner }
  carol: { github: carol }
roles:
  R3: { members: [alice] }
  R5: { members: [carol] }
  R7: { members: [omar, carol] }
  R8: { members: [carol] }
stages:
  - name: plan
    approval: { roles: [R3], timeout: 1h, escalation: R8, deadline: 2d }
  - release
channels:
  cli: { publicKey: ${KEY} }
`;

const parse = (text: string) => parsePolicy(text, { file: 'secmlops.yaml' });
const broken = (edit: (t: string) => string) => () => parse(edit(VALID));

describe('parsePolicy', () => {
  test('a valid policy gets defaults: R1-R8, the release two-person rule, durations in ms', () => {
    const p = parse(VALID);
    expect(p.roles.map((r) => r.id)).toEqual(['R1', 'R2', 'R3', 'R4', 'R5', 'R6', 'R7', 'R8']);
    expect(p.roles.find((r) => r.id === 'R7')).toEqual({ id: 'R7', name: 'model owner', members: ['omar', 'carol'] });
    expect(p.stages[0].approval).toEqual({
      roles: ['R3'],
      quorum: 1,
      everyRole: true,
      timeoutMs: 3_600_000,
      escalation: 'R8',
      deadlineMs: 172_800_000,
    });
    expect(p.stages[1].approval).toEqual({ roles: ['R7', 'R5'], quorum: 2, everyRole: true });
  });

  test('the example policy validates', async () => {
    const p = await loadPolicy('examples/fashion-mnist/secmlops.yaml').catch((e: Error) => {
      // The example pins keys that `npm start` creates; without them the message says so.
      expect(e.message).toMatch(/channels\.cli\.publicKeyFile: cannot read .*secmlops keys init/);
      return undefined;
    });
    if (p) expect(threatMatrix(p.threatModel).filter((c) => c.status === 'uncovered')).toEqual([]);
  });

  const cases: [string, (t: string) => string, string][] = [
    [
      'an unknown key',
      (t) => t.replace('name: demo', 'name: demo\nowner: me'),
      'secmlops.yaml: owner: unknown key "owner"; expected one of: version, name, people, stages, roles, gates, artifacts, data, train, evaluate, threatModel, channels, release, notifications, monitor',
    ],
    [
      'a misspelt nested key',
      (t) => t.replace('alice: { github: alice-sec }', 'alice: { gihub: alice-sec }'),
      'secmlops.yaml: people.alice.gihub: unknown key "gihub"; expected one of: name, github, slack, console',
    ],
    [
      'an unknown role member',
      (t) => t.replace('members: [alice]', 'members: [alicia]'),
      'secmlops.yaml: roles.R3.members[0]: unknown person "alicia"; people are: alice, omar, carol',
    ],
    [
      'a monitor stage without the stages it watches',
      (t) =>
        t.replace('  - release', '  - monitor') + 'monitor: { window: 1m, drift: { psi: 0.25, ksPValue: 0.001 } }\n',
      'secmlops.yaml: monitor: the monitor stage watches what the evaluate stage produced; list the evaluate stage too',
    ],
    [
      'stages out of order',
      (t) => t.replace('  - release', '  - release\n  - data'),
      'secmlops.yaml: stages[2].name: stage "data" is out of order or repeated; stages run in the order plan → data → train → evaluate → release → monitor',
    ],
    [
      'a bad duration',
      (t) => t.replace('timeout: 1h', 'timeout: soon'),
      'secmlops.yaml: stages[0].approval.timeout: expected a duration such as 90s, 30m, 4h or 7d, got "soon"',
    ],
    [
      'a deadline before the timeout',
      (t) => t.replace('deadline: 2d', 'deadline: 30m'),
      'secmlops.yaml: stages[0].approval.deadline: expected a deadline later than the timeout',
    ],
    [
      'an approval naming an unknown role',
      (t) => t.replace('roles: [R3]', 'roles: [R33]'),
      'secmlops.yaml: stages[0].approval.roles[0]: unknown role "R33"; roles are: R1, R2, R3, R4, R5, R6, R7, R8',
    ],
    [
      'a quorum below the roles it must cover',
      (t) => t.replace('roles: [R3],', 'roles: [R3, R5], quorum: 1,'),
      'secmlops.yaml: stages[0].approval.quorum: expected a number from 2 to 100, got number 1',
    ],
    [
      'a public key that is not 32 bytes',
      (t) => t.replace(KEY, 'c2hvcnQ='),
      'secmlops.yaml: channels.cli.publicKey: expected an Ed25519 public key: base64 of 32 raw bytes',
    ],
    [
      'an unknown channel',
      (t) => t.replace('  cli: {', '  email: {'),
      'secmlops.yaml: channels.email: unknown key "email"; expected one of: cli, console, slack, github',
    ],
    [
      'the wrong schema version',
      (t) => t.replace('version: 1', 'version: 2'),
      'secmlops.yaml: version: expected 1 (the only schema version), got 2',
    ],
    [
      'a GitHub login used by two people',
      (t) => t.replace('omar: { github: omar-owner }', 'omar: { github: Alice-Sec }'),
      'secmlops.yaml: people.omar.github: github identity "Alice-Sec" is already used by person "alice"; each identity maps to one person',
    ],
    ['not YAML at all', () => 'stages: [plan\nname: x', 'secmlops.yaml: line 2, column 1: not valid YAML'],
    [
      'a dataset file escaping its root',
      (t) =>
        t +
        'artifacts:\n  dataset:\n    root: /data\n    files: [{ path: ../etc/passwd, sha256: ' +
        'a'.repeat(64) +
        ' }]\n',
      'secmlops.yaml: artifacts.dataset.files[0].path: expected a path inside the dataset root, got "../etc/passwd"',
    ],
    [
      'a split whose file is not pinned',
      (t) =>
        t +
        'artifacts:\n  dataset:\n    root: /data\n    files: [{ path: a.idx, sha256: ' +
        'a'.repeat(64) +
        ' }]\n    splits: { test: { images: a.idx, labels: b.idx } }\n',
      'secmlops.yaml: artifacts.dataset.splits.test.labels: "b.idx" is not among artifacts.dataset.files, so its digest is not pinned',
    ],
    [
      'a gate on a metric nobody measures',
      (t) => t + 'gates: [{ metric: monitor.drift, op: "<=", value: 0.7 }]\n',
      'secmlops.yaml: gates[0].metric: unknown metric "monitor.drift"',
    ],
    [
      'a gate on a stage the policy does not run',
      (t) => t + 'gates: [{ metric: evaluate.pgd.robust_accuracy, op: ">=", value: 0.7 }]\n',
      'secmlops.yaml: gates[0].metric: metric "evaluate.pgd.robust_accuracy" is measured by the evaluate stage, which this policy does not run',
    ],
    [
      'a threat-model control for an unknown asset',
      (t) =>
        t +
        'threatModel:\n  assets: [{ id: data }]\n  controls: [{ id: c, mitigates: [{ asset: model, stride: T }] }]\n',
      'secmlops.yaml: threatModel.controls[0].mitigates[0].asset: unknown asset "model"; assets are: data',
    ],
    [
      'a STRIDE letter that is not one',
      (t) =>
        t +
        'threatModel:\n  assets: [{ id: data }]\n  controls: [{ id: c, mitigates: [{ asset: data, stride: TX }] }]\n',
      'secmlops.yaml: threatModel.controls[0].mitigates[0].stride: expected one of S, T, R, I, D, E, got "X"',
    ],
  ];
  test.each(cases)('refuses %s, naming the file, the path and what was expected', (_name, edit, message) => {
    const run = broken(edit);
    expect(run).toThrow(PolicyError);
    expect(run).toThrow(message);
  });

  test('key files need a reader, and a missing one is named', () => {
    const text = VALID.replace(`publicKey: ${KEY}`, 'publicKeyFile: keys/cli.pub');
    expect(() => parse(text)).toThrow(
      'secmlops.yaml: channels.cli.publicKeyFile: key files cannot be read here; give publicKey instead',
    );
    const reading = () =>
      parsePolicy(text, { file: 'p.yaml', readKeyFile: (p) => readFileSync(`/nonexistent/${p}`, 'utf8') });
    expect(reading).toThrow(/p\.yaml: channels\.cli\.publicKeyFile: cannot read "keys\/cli\.pub" \(ENOENT/);
  });
});

describe('quorum', () => {
  const vote = (person: string, roles: string[]): Vote => ({ person, roles, decision: 'approve' }) as Vote;
  const twoPerson: Approval = { roles: ['R7', 'R5'], quorum: 2, everyRole: true };

  test('the two-person rule needs a different approver for each role', () => {
    expect(quorumMet(twoPerson, [vote('omar', ['R7'])])).toBe(false);
    expect(quorumMet(twoPerson, [vote('omar', ['R7']), vote('carol', ['R7', 'R5'])])).toBe(true);
    expect(quorumMet(twoPerson, [vote('omar', ['R7']), vote('olga', ['R7'])])).toBe(false);
  });

  test('one person holding both roles cannot satisfy it alone', () => {
    expect(quorumMet(twoPerson, [vote('carol', ['R7', 'R5'])])).toBe(false);
  });
});

describe('the evaluate block', () => {
  const base = (evaluate: string, gates = '') => `
version: 1
name: ev
people: { alice: {} }
roles: { R3: { members: [alice] } }
stages: [evaluate]
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { test: { images: i.gz, labels: l.gz } }
  model: { path: m.onnx }
${evaluate}
${gates}`;
  const ok = 'evaluate:\n  attacks: [{ id: pgd20, attack: pgd, eps: 0.1, steps: 20 }]';

  test('parses attacks with defaults', () => {
    const p = parse(
      base(
        ok,
        'gates: [{ metric: evaluate.pgd20.robust_accuracy, op: ">=", value: 0.7 }, { metric: evaluate.class.6.miss_rate, op: "<=", value: 0.15 }]',
      ),
    );
    expect(p.evaluate).toEqual({
      split: 'test',
      limit: undefined,
      range: [0, 1],
      seed: 1,
      safetyCritical: [],
      attacks: [{ id: 'pgd20', attack: 'pgd', eps: 0.1, steps: 20 }],
    });
    expect(p.stages[0].approval?.roles).toEqual(['R3']);
  });

  const cases: [string, string, string][] = [
    [
      'an evaluate stage without its block',
      base(''),
      'secmlops.yaml: evaluate: the evaluate stage needs an evaluate block with its attacks',
    ],
    [
      'an unknown attack',
      base('evaluate:\n  attacks: [{ id: x, attack: cw, eps: 0.1 }]'),
      'secmlops.yaml: evaluate.attacks[0].attack: expected one of fgsm, pgd, deepfool, square, got "cw"',
    ],
    [
      'an eps larger than the range',
      base('evaluate:\n  attacks: [{ id: x, attack: fgsm, eps: 2 }]'),
      'secmlops.yaml: evaluate.attacks[0].eps: expected a number from 0 to 1, got number 2',
    ],
    [
      'a curve with a negative eps',
      base(ok.replace('evaluate:', 'evaluate:\n  curve: { attack: pgd, eps: [0.1, -0.1] }')),
      'secmlops.yaml: evaluate.curve.eps[1]: expected a number from 0 to 1, got number -0.1',
    ],
    [
      'more evaluation shards than the engine cuts',
      base(ok.replace('evaluate:', 'evaluate:\n  shards: 65')),
      'secmlops.yaml: evaluate.shards: expected a number from 1 to 64, got number 65',
    ],
    [
      'a shard count that is neither a number nor auto',
      base(ok.replace('evaluate:', 'evaluate:\n  shards: many')),
      'secmlops.yaml: evaluate.shards: expected a number from 1 to 64 or "auto", got "many"',
    ],
    [
      'a fractional shard count',
      base(ok.replace('evaluate:', 'evaluate:\n  shards: 1.5')),
      'secmlops.yaml: evaluate.shards: expected a whole number from 1 to 64, got 1.5',
    ],
    [
      'DeepFool with an eps',
      base('evaluate:\n  attacks: [{ id: x, attack: deepfool, eps: 0.1 }]'),
      'secmlops.yaml: evaluate.attacks[0].eps: DeepFool finds minimal perturbations and takes no eps',
    ],
    [
      'a gate on an attack the suite lacks',
      base(ok, 'gates: [{ metric: evaluate.fgsm.robust_accuracy, op: ">=", value: 0.7 }]'),
      'secmlops.yaml: gates[0].metric: metric "evaluate.fgsm.robust_accuracy" names attack "fgsm", which evaluate.attacks does not define',
    ],
    [
      'a gate on a class that does not exist',
      base(ok, 'gates: [{ metric: evaluate.class.12.miss_rate, op: "<=", value: 0.1 }]'),
      'secmlops.yaml: gates[0].metric: metric "evaluate.class.12.miss_rate" names class 12, outside 0..9',
    ],
  ];
  test.each(cases)('refuses %s', (_n, text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});

describe('the train block', () => {
  const base = (train: string) => `
version: 1
name: tr
people: { mia: {} }
roles: { R2: { members: [mia] } }
stages: [train]
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { train: { images: i.gz, labels: l.gz } }
${train}`;

  test('parses a defended run with defaults', () => {
    const p = parse(
      base('train: { arch: small-cnn, epochs: 15, defense: { kind: fgsm-rs, eps: 0.1 }, earlyStop: true }'),
    );
    expect(p.train).toEqual({
      split: 'train',
      arch: 'small-cnn',
      defense: { kind: 'fgsm-rs', eps: 0.1 },
      epochs: 15,
      batch: 128,
      lr: 1e-3,
      optimizer: 'adam',
      schedule: 'constant',
      weightDecay: 0,
      earlyStop: true,
      limit: undefined,
      seed: 1,
      range: [0, 1],
      checkpointEvery: 100,
      heartbeatTimeoutMs: 60_000,
    });
    expect(p.stages[0].approval?.roles).toEqual(['R2']);
  });

  test('parses TRADES with its beta and inner steps', () => {
    const p = parse(
      base('train: { arch: wide-cnn, epochs: 4, defense: { kind: trades, eps: 0.1, beta: 3, steps: 5 } }'),
    );
    expect(p.train?.defense).toEqual({ kind: 'trades', eps: 0.1, beta: 3, steps: 5 });
    expect(parse(base('train: { arch: mlp, epochs: 1, heartbeatTimeout: 2m }')).train?.heartbeatTimeoutMs).toBe(
      120_000,
    );
  });

  test('parses an attack step size for each defense', () => {
    expect(
      parse(base('train: { arch: mlp, epochs: 1, defense: { kind: pgd, eps: 0.1, steps: 3, stepSize: 0.05 } }')).train
        ?.defense,
    ).toEqual({ kind: 'pgd', eps: 0.1, steps: 3, stepSize: 0.05 });
    expect(
      parse(base('train: { arch: mlp, epochs: 1, defense: { kind: fgsm-rs, eps: 0.1, stepSize: 0.1 } }')).train
        ?.defense,
    ).toEqual({ kind: 'fgsm-rs', eps: 0.1, stepSize: 0.1 });
  });

  const cases: [string, string, string][] = [
    [
      'a train stage without its block',
      base(''),
      'secmlops.yaml: train: the train stage needs a train block (arch, defense, epochs)',
    ],
    [
      'a heartbeat timeout shorter than the heartbeat',
      base('train: { arch: mlp, epochs: 1, heartbeatTimeout: 5s }'),
      'secmlops.yaml: train.heartbeatTimeout: expected a duration of at least 15s such as "60s" or "2m", got "5s"',
    ],
    [
      'beta outside TRADES',
      base('train: { arch: mlp, epochs: 1, defense: { kind: pgd, eps: 0.1, beta: 2 } }'),
      'secmlops.yaml: train.defense.beta: beta applies to trades only',
    ],
    [
      'steps for FGSM-RS',
      base('train: { arch: mlp, epochs: 1, defense: { kind: fgsm-rs, eps: 0.1, steps: 3 } }'),
      'secmlops.yaml: train.defense.steps: steps applies to pgd and trades only',
    ],
    [
      'a step size above 2·eps',
      base('train: { arch: mlp, epochs: 1, defense: { kind: pgd, eps: 0.1, stepSize: 0.3 } }'),
      'secmlops.yaml: train.defense.stepSize: expected a number',
    ],
    [
      'a zero step size',
      base('train: { arch: mlp, epochs: 1, defense: { kind: fgsm-rs, eps: 0.1, stepSize: 0 } }'),
      'secmlops.yaml: train.defense.stepSize: expected a number',
    ],
    [
      'a step size without a defense',
      base('train: { arch: mlp, epochs: 1, defense: { kind: none, stepSize: 0.1 } }'),
      'secmlops.yaml: train.defense.stepSize: stepSize applies to fgsm-rs, pgd and trades',
    ],
    [
      'TRADES without eps',
      base('train: { arch: mlp, epochs: 1, defense: { kind: trades } }'),
      'secmlops.yaml: train.defense.eps: expected a number',
    ],
    [
      'early stopping without a defense',
      base('train: { arch: mlp, epochs: 1, earlyStop: true }'),
      'secmlops.yaml: train.earlyStop: early stopping measures robust validation accuracy at the defense’s eps: give a defense',
    ],
    [
      'an unknown architecture',
      base('train: { arch: resnet50, epochs: 1 }'),
      'secmlops.yaml: train.arch: expected one of small-cnn, wide-cnn, mlp, got "resnet50"',
    ],
  ];
  test.each(cases)('refuses %s', (_n, text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});
