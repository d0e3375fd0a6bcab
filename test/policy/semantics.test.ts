// Policies that parse but could never run: names that collide with Object.prototype, approvals nobody can give,
// durations no timer can hold. Each is refused when read, naming the file and the field.
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey } from '../../activities/keys.js';
import {
  PolicyError,
  parsePolicy,
  parsePolicyWithDigest,
  unmeetableApproval,
  type Approval,
  type Policy,
} from '../../policy/index.js';

const parse = (text: string) => parsePolicy(text, { file: 'secmlops.yaml' });
const refused = (text: string, message: string) => {
  expect(() => parse(text)).toThrow(PolicyError);
  expect(() => parse(text)).toThrow(message);
};

const FILES = `files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]`;
/** A policy with a dataset; `stages` and `more` complete it. */
const policy = (stages: string, more = '', roles = '{ R1: { members: [dana] }, R2: { members: [mia] } }') => `
version: 1
name: t
people: { dana: {}, mia: {} }
roles: ${roles}
stages: ${stages}
artifacts:
  dataset:
    root: /data
    ${FILES}
    splits: { train: { images: i.gz, labels: l.gz } }
${more}`;

const INHERITED = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];

describe('names the policy looks up are own names only', () => {
  test.each(INHERITED)('train.split: %s is an unknown split, not a hit on Object.prototype', (name) => {
    refused(
      policy('[{ name: train, approval: false }]', `train: { split: ${name}, arch: mlp, epochs: 1 }`),
      `secmlops.yaml: train.split: split "${name}" is not in artifacts.dataset.splits; splits are: train`,
    );
  });

  test.each(INHERITED)('evaluate.split: %s is an unknown split', (name) => {
    refused(
      policy(
        '[{ name: evaluate, approval: false }]',
        `  model: { path: m.onnx }\nevaluate: { split: ${name}, attacks: [{ id: f, attack: fgsm, eps: 0.1 }] }`,
      ),
      `secmlops.yaml: evaluate.split: split "${name}" is not in artifacts.dataset.splits; splits are: train`,
    );
  });

  test.each(['constructor', 'toString', 'hasOwnProperty'])('a gate on data.%s.images names an unknown split', (n) => {
    refused(
      policy('[{ name: data, approval: false }]', `gates: [{ metric: data.${n}.images, op: ">=", value: 1 }]`),
      `secmlops.yaml: gates[0].metric: metric "data.${n}.images" names split "${n}", which artifacts.dataset.splits does not define`,
    );
  });

  test.each(['constructor', 'toString', 'hasOwnProperty'])('approval and escalation role %s are unknown', (n) => {
    refused(
      policy(`[{ name: data, approval: { roles: [${n}] } }]`),
      `secmlops.yaml: stages[0].approval.roles[0]: unknown role "${n}"; roles are: R1, R2, R3, R4, R5, R6, R7, R8`,
    );
    refused(
      policy(`[{ name: data, approval: { roles: [R1], timeout: 1h, escalation: ${n} } }]`),
      `secmlops.yaml: stages[0].approval.escalation: unknown role "${n}"`,
    );
  });

  test('a person, role or split may not be named after an inherited property', () => {
    const reserved = (what: string, name: string) =>
      `"${name}" cannot be a ${what}: every JavaScript object inherits a property of that name`;
    // Without the check, role "hasOwnProperty" took Object.prototype.hasOwnProperty as its default name.
    refused(
      policy('[data]', '', '{ R1: { members: [dana] }, hasOwnProperty: { members: [mia] } }'),
      `secmlops.yaml: roles.hasOwnProperty: ${reserved('role id', 'hasOwnProperty')}`,
    );
    refused(
      policy('[data]').replace('mia: {}', 'mia: {}, constructor: {}'),
      `secmlops.yaml: people.constructor: ${reserved('person id', 'constructor')}`,
    );
    for (const name of INHERITED)
      refused(
        policy('[data]').replace('splits: {', `splits: { ${name}: { images: i.gz, labels: l.gz },`),
        `secmlops.yaml: artifacts.dataset.splits.${name}: ${reserved('split name', name)}`,
      );
  });

  test('a key file named __proto__ still counts in the policy digest', () => {
    const text = `${policy('[data]')}channels: { cli: { publicKeyFile: __proto__ } }\n`;
    const key = () => rawPublicKey(generateKeyPairSync('ed25519').publicKey);
    const digest = (k: string) => parsePolicyWithDigest(text, { file: 'p.yaml', readKeyFile: () => k }).digest;
    expect(digest(key())).not.toBe(digest(key()));
  });
});

describe('approvals somebody can give', () => {
  test('a role an approval needs has members', () => {
    refused(
      policy('[plan]'),
      'secmlops.yaml: stages[0]: role R3 (security engineer) has no members, so nobody can give its approval; add a person to roles.R3.members (the default approval of plan; give the stage an approval to change it)',
    );
    refused(
      policy('[{ name: data, approval: { roles: [R1, R6] } }]'),
      'secmlops.yaml: stages[0].approval.roles[1]: role R6 (privacy officer) has no members, so nobody can give its approval; add a person to roles.R6.members',
    );
    refused(
      policy('[{ name: data, approval: { roles: [R4, R6], everyRole: false } }]'),
      'secmlops.yaml: stages[0].approval.roles: nobody holds any of R4, R6, so nobody can give this approval',
    );
  });

  test('an escalation role has members', () => {
    refused(
      policy('[{ name: data, approval: { roles: [R1], timeout: 1h, escalation: R8 } }]'),
      'secmlops.yaml: stages[0].approval.escalation: role R8 (incident responder) has no members, so an escalation would reach nobody; add a person to roles.R8.members',
    );
  });

  test('a quorum no more than the people who could meet it', () => {
    refused(
      policy('[{ name: data, approval: { roles: [R1], quorum: 2 } }]'),
      'secmlops.yaml: stages[0].approval.quorum: a quorum of 2 needs 2 distinct people holding R1, but only dana holds them',
    );
    refused(
      policy('[{ name: data, approval: { roles: [R1, R2], quorum: 3, everyRole: false } }]'),
      'secmlops.yaml: stages[0].approval.quorum: a quorum of 3 needs 3 distinct people holding R1 or R2, but only dana, mia hold them',
    );
    // everyRole: two roles, two different holders, but a third approver does not exist.
    refused(
      policy('[{ name: data, approval: { roles: [R1, R2], quorum: 3 } }]'),
      'secmlops.yaml: stages[0].approval.quorum: a quorum of 3 needs 3 distinct people holding R1 or R2, but only dana, mia hold them',
    );
  });

  test('a two-person rule whose roles one person holds alone is refused', () => {
    const roles =
      '{ R1: { members: [dana] }, R2: { members: [mia] }, R5: { members: [dana] }, R7: { members: [dana] } }';
    refused(
      policy('[release]', '', roles),
      'secmlops.yaml: stages[0]: everyRole needs a different person for each of R7, R5 (separation of duties), but dana alone holds them all (the default approval of release; give the stage an approval to change it)',
    );
    refused(
      policy('[{ name: data, approval: { roles: [R1, R5, R2] } }]', '', roles),
      'secmlops.yaml: stages[0].approval.roles: everyRole needs a different person for each of R1, R5, R2 (separation of duties), but no choice of their members gives each role a different person (R1: dana; R5: dana; R2: mia)',
    );
  });

  test('what only the author exclusion could make unmeetable passes: that is checked when a stage starts', () => {
    // omar alone holds R7: if he authors a change, its release waits in vain, but others' changes can be released.
    const p = parse(
      policy('[release]', '', '{ R7: { members: [omar] }, R5: { members: [carol, omar] } }').replace(
        'mia: {}',
        'mia: {}, omar: { github: omar-owner }, carol: {}',
      ),
    );
    expect(unmeetableApproval(p, p.stages[0].approval!, 'omar-owner')).toMatch(/only 1 can decide/);
    // An any-of approval does not need every role it lists to have members.
    expect(parse(policy('[{ name: data, approval: { roles: [R1, R6], everyRole: false } }]')).stages).toHaveLength(1);
  });

  test('the check agrees with the workflow’s rule for every membership of three roles among three people', () => {
    const approvals: Approval[] = [
      { roles: ['R1'], quorum: 1, everyRole: true },
      { roles: ['R1', 'R2'], quorum: 2, everyRole: true },
      { roles: ['R1', 'R2', 'R3'], quorum: 3, everyRole: true },
      { roles: ['R1', 'R2'], quorum: 3, everyRole: true },
      { roles: ['R1', 'R2'], quorum: 2, everyRole: false },
      { roles: ['R1', 'R2', 'R3'], quorum: 3, everyRole: false },
    ];
    const people = ['a', 'b', 'c'];
    for (let bits = 0; bits < 1 << 9; bits++) {
      const members = ['R1', 'R2', 'R3'].map((_, r) => people.filter((_, p) => bits & (1 << (r * 3 + p))));
      const roles = members.map((m, r) => `R${r + 1}: { members: [${m.join(', ')}] }`).join(', ');
      for (const a of approvals) {
        const text = `version: 1\nname: t\npeople: { a: {}, b: {}, c: {} }\nroles: { ${roles} }\nstages:\n  - { name: data, approval: { roles: [${a.roles.join(', ')}], quorum: ${a.quorum}, everyRole: ${a.everyRole} } }\n`;
        const shape = {
          people: people.map((id) => ({ id })),
          roles: members.map((m, r) => ({ id: `R${r + 1}`, name: '', members: m })),
        } as Policy;
        const meetable = unmeetableApproval(shape, a, undefined) === undefined;
        let parsed = true;
        try {
          parse(text);
        } catch (e) {
          if (!(e instanceof PolicyError)) throw e;
          parsed = false;
        }
        expect({ members, a, parsed }).toEqual({ members, a, parsed: meetable });
      }
    }
  });
});

describe('durations', () => {
  const approval = (extra: string) => policy(`[{ name: data, approval: { roles: [R1], ${extra} } }]`);
  test('are at most a year, and huge ones are refused rather than overflowing', () => {
    refused(
      approval('timeout: 99999999999999999999d, escalation: R1'),
      'secmlops.yaml: stages[0].approval.timeout: expected a duration of at most 365d (one year), got "99999999999999999999d"',
    );
    refused(
      approval(`timeout: 1h, escalation: R1, deadline: ${'9'.repeat(400)}d`),
      `secmlops.yaml: stages[0].approval.deadline: expected a duration of at most 365d (one year), got "${'9'.repeat(40)}…"`,
    );
    refused(
      approval('deadline: 8761h'),
      'secmlops.yaml: stages[0].approval.deadline: expected a duration of at most 365d (one year), got "8761h"',
    );
    refused(
      policy('[{ name: train, approval: false }]', 'train: { arch: mlp, epochs: 1, heartbeatTimeout: 366d }'),
      'secmlops.yaml: train.heartbeatTimeout: expected a duration of at most 365d (one year), got "366d"',
    );
    refused(
      approval('timeout: 0s, escalation: R1'),
      'secmlops.yaml: stages[0].approval.timeout: expected a duration such as 90s, 30m, 4h or 7d, got "0s"',
    );
    expect(parse(approval('timeout: 1d, escalation: R1, deadline: 365d')).stages[0].approval?.deadlineMs).toBe(
      365 * 86_400_000,
    );
  });
});

describe('the example policy', () => {
  test('validates with every check, its keys given by the key-file callback', () => {
    const keys = new Map<string, string>();
    const p = parsePolicy(readFileSync('examples/fashion-mnist/secmlops.yaml', 'utf8'), {
      file: 'examples/fashion-mnist/secmlops.yaml',
      readKeyFile: (path) => {
        if (!keys.has(path)) keys.set(path, rawPublicKey(generateKeyPairSync('ed25519').publicKey));
        return keys.get(path)!;
      },
    });
    expect(p.stages.map((s) => s.approval?.roles)).toEqual([['R3'], ['R1'], ['R2'], ['R3'], ['R7', 'R5']]);
    expect(p.stages[4].approval).toMatchObject({ quorum: 2, everyRole: true, escalation: 'R8' });
    expect(p.stages[4].approval?.deadlineMs).toBe(14 * 86_400_000);
    expect(Object.keys(p.channels)).toEqual(['cli', 'console', 'slack', 'github']);
    expect(keys.size).toBe(5);
  });
});

describe('evaluate.modelLimits', () => {
  const example = readFileSync('examples/fashion-mnist/secmlops.yaml', 'utf8');
  const withLimits = (limits: string) => example.replace(/^evaluate:\n/m, `evaluate:\n  modelLimits: ${limits}\n`);
  const opts = { file: 'secmlops.yaml', readKeyFile: () => rawPublicKey(generateKeyPairSync('ed25519').publicKey) };

  test('raises or lowers the limits a model must stay within', () => {
    const p = parsePolicy(withLimits('{ maxNodes: 20000, maxGraphDepth: 2 }'), opts);
    expect(p.evaluate?.modelLimits).toEqual({ maxNodes: 20000, maxGraphDepth: 2 });
  });

  test.each([
    ['{ maxNodes: 0 }', 'evaluate.modelLimits.maxNodes'],
    ['{ maxBytes: 4294967296 }', 'evaluate.modelLimits.maxBytes'],
    ['{ maxNodez: 10 }', 'evaluate.modelLimits'],
    ['{ constructor: 10 }', 'evaluate.modelLimits'],
  ])('%s is refused, naming %s', (limits, field) => {
    expect(() => parsePolicy(withLimits(limits), opts)).toThrow(PolicyError);
    expect(() => parsePolicy(withLimits(limits), opts)).toThrow(`secmlops.yaml: ${field}`);
  });
});

describe('artifacts.dataset.maxFileBytes', () => {
  const example = readFileSync('examples/fashion-mnist/secmlops.yaml', 'utf8');
  const withCap = (v: string) => example.replace(/^(\s+)root: (.*)$/m, `$1root: $2\n$1maxFileBytes: ${v}`);
  const opts = { file: 'secmlops.yaml', readKeyFile: () => rawPublicKey(generateKeyPairSync('ed25519').publicKey) };

  test('raises or lowers the largest IDX file the stages read', () => {
    expect(parsePolicy(withCap('1073741824'), opts).artifacts.dataset?.maxFileBytes).toBe(1073741824);
    expect(parsePolicy(example, opts).artifacts.dataset?.maxFileBytes).toBeUndefined();
  });

  test.each(['512', '99999999999999999999', 'big'])('%s is refused, naming the field', (v) => {
    expect(() => parsePolicy(withCap(v), opts)).toThrow('secmlops.yaml: artifacts.dataset.maxFileBytes');
  });
});
