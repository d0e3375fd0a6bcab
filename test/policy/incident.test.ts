// Incident decisions: what the monitor workflow's validator and the guarded server both check before a rollback.
// Each case is a decision an attacker could send; each must be refused with its reason.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey, signDecision } from '../../activities/keys.js';
import {
  checkIncidentDecision,
  incidentSubject,
  parsePolicy,
  type Decision,
  type IncidentContext,
} from '../../policy/index.js';
import { switchRefusal } from '../../serve/follow-monitor.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519').privateKey;
const MODEL = 'a'.repeat(64);
const TARGET = `sha256:${'b'.repeat(64)}`;
const MONITOR = 'pipe-1/monitor';
const DATASET = `artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'c'.repeat(64)} }, { path: l.gz, sha256: ${'d'.repeat(64)} }]
    splits: { test: { images: i.gz, labels: l.gz } }
  model: { path: m.onnx }
evaluate: { split: test, attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }] }
`;
const policyText = (monitor: string, stages = '  - evaluate\n  - release\n  - monitor') => `
version: 1
name: demo
people: { alice: { github: alice-sec }, ivan: { github: ivan-ir }, omar: {}, carol: {} }
roles: { R3: { members: [alice] }, R5: { members: [carol] }, R7: { members: [omar] }, R8: { members: [ivan] } }
stages:
${stages}
channels: { cli: { publicKey: ${rawPublicKey(publicKey)} } }
${DATASET}${monitor}`;
const MONITOR_BLOCK = 'monitor: { window: 1m, drift: { psi: 0.25, ksPValue: 0.001 } }\n';
const policy = parsePolicy(policyText(MONITOR_BLOCK), { file: 'secmlops.yaml' });
const NOW = Date.parse('2026-12-02T10:00:00Z');

const rollback: Decision = {
  workflowId: MONITOR,
  stage: 'incident-1',
  person: 'ivan',
  channel: 'cli',
  decision: 'approve',
  comment: '',
  issuedAt: '2026-12-02T09:59:00.000Z',
  subjectDigest: incidentSubject(MODEL),
  resolution: { action: 'rollback', attestation: TARGET },
};
const ctx: IncidentContext = { policy, workflowId: MONITOR, incident: 1, modelSha256: MODEL, votes: [], now: NOW };
const check = (d: Decision, c: Partial<IncidentContext> = {}, key = privateKey) =>
  checkIncidentDecision({ ...ctx, ...c }, signDecision(d, key));

describe('incident decisions', () => {
  test('the incident responder’s signed rollback is accepted', () => {
    expect(check(rollback)).toBeUndefined();
    expect(check({ ...rollback, resolution: { action: 'retrain' } })).toBeUndefined();
    expect(check({ ...rollback, decision: 'reject', resolution: undefined })).toBeUndefined();
  });

  test.each([
    ['someone without R8', { person: 'alice' }, 'alice holds none of the roles this stage needs (R8)'],
    ['another incident', { stage: 'incident-2' }, 'the decision was signed for stage incident-2, not incident-1'],
    ['another monitor', { workflowId: 'pipe-2/monitor' }, 'the decision was signed for workflow pipe-2/monitor'],
    ['another model', { subjectDigest: incidentSubject('e'.repeat(64)) }, 'the decision was signed for another change'],
    ['no resolution', { resolution: undefined }, 'an approval of an incident must say how it is resolved'],
    ['a malformed target', { resolution: { action: 'rollback', attestation: '../x' } }, 'a rollback names the earlier'],
    ['an unknown action', { resolution: { action: 'delete' } }, 'unknown resolution "delete"'],
    ['an old decision', { issuedAt: '2026-11-30T09:00:00.000Z' }, 'more than a day old'],
  ] as [string, Partial<Decision>, string][])('refuses %s', (_name, change, reason) => {
    expect(check({ ...rollback, ...change })).toContain(reason);
  });

  test('refuses a closed incident, a second vote and a foreign key', () => {
    expect(check(rollback, { notWaiting: 'incident 1 is resolved' })).toContain('is not waiting for approval');
    expect(check(rollback, {}, other)).toContain('does not verify against the cli channel');
    const vote = { ...signDecision(rollback, privateKey), roles: ['R8'] };
    expect(check(rollback, { votes: [vote] })).toContain('ivan has already decided');
  });

  test('the resolution is signed: changing the target or dropping it after signing breaks the signature', () => {
    const signed = signDecision(rollback, privateKey);
    const other = { ...signed, resolution: { action: 'rollback' as const, attestation: `sha256:${'f'.repeat(64)}` } };
    expect(checkIncidentDecision(ctx, other)).toContain('does not verify');
    const { resolution: _dropped, ...withoutResolution } = signed;
    expect(checkIncidentDecision(ctx, { ...withoutResolution, decision: 'reject' })).toContain('does not verify');
  });
});

describe('the guarded server’s own check of a switch', () => {
  const o = { policy, monitorId: MONITOR };
  const serving = (decision?: Decision, attestation = TARGET) => ({
    attestation,
    modelSha256: 'b'.repeat(64),
    since: '',
    pipeline: 'p',
    ...(decision ? { decision: signDecision(decision, privateKey) } : {}),
  });
  test('switches only on an R8 rollback to exactly that release, for the model served now', () => {
    expect(switchRefusal(o, serving(rollback), MODEL, NOW)).toBeUndefined();
    expect(switchRefusal(o, serving(), MODEL, NOW)).toBe(
      'the monitor names another release without a decision choosing it',
    );
    expect(switchRefusal(o, serving(rollback, `sha256:${'9'.repeat(64)}`), MODEL, NOW)).toContain(
      'does not choose a rollback to',
    );
    expect(switchRefusal(o, serving({ ...rollback, person: 'alice' }), MODEL, NOW)).toContain('alice holds none');
    expect(switchRefusal(o, serving(rollback), 'e'.repeat(64), NOW)).toContain('signed for another change');
    expect(switchRefusal(o, serving({ ...rollback, resolution: { action: 'retrain' } }), MODEL, NOW)).toContain(
      'does not choose a rollback',
    );
  });

  test('refuses a decision already acted on, or older than the one that chose the model served now', () => {
    const s = serving(rollback);
    expect(switchRefusal(o, s, MODEL, NOW, { used: new Set([s.decision!.signature]) })).toBe(
      'the decision was acted on already (a replay?)',
    );
    expect(switchRefusal(o, s, MODEL, NOW, { chosenAt: Date.parse(rollback.issuedAt) + 1 })).toBe(
      'the decision is not newer than the one that chose the model served now (a replay?)',
    );
    expect(switchRefusal(o, s, MODEL, NOW, { chosenAt: Date.parse(rollback.issuedAt) - 1 })).toBeUndefined();
  });
});

describe('the monitor block', () => {
  const refused = (monitor: string, message: string, stages?: string) =>
    expect(() => parsePolicy(policyText(monitor, stages), { file: 'secmlops.yaml' })).toThrow(message);
  test('parses with defaults', () => {
    expect(policy.monitor).toEqual({
      windowMs: 60_000,
      minInputs: 100,
      quietWindows: 10,
      drift: { psi: 0.25, ksPValue: 0.001 },
      windowsPerRun: 24,
      telemetry: { maxFileBytes: 16 * 1024 * 1024, files: 4, rawInputs: false },
    });
    expect(policy.stages.at(-1)).toEqual({ name: 'monitor', approval: { roles: ['R8'], quorum: 1, everyRole: true } });
  });
  test.each([
    ['', 'secmlops.yaml: monitor: the monitor stage needs a monitor block with its window and drift thresholds'],
    ['monitor: { window: 1m }\n', 'secmlops.yaml: monitor.drift: missing; this key is required'],
    [
      'monitor: { window: 1m, drift: { psi: 0.25 } }\n',
      'secmlops.yaml: monitor.drift.ksPValue: missing; this key is required',
    ],
    ['monitor: { window: 1m, drift: { psi: 0, ksPValue: 0.01 } }\n', 'secmlops.yaml: monitor.drift.psi: expected a'],
    ['monitor: { window: 1m, drift: { psi: 0.2, ksPValue: 1 } }\n', 'secmlops.yaml: monitor.drift.ksPValue: expected'],
    ['monitor: { window: 100ms, drift: { psi: 0.2, ksPValue: 0.01 } }\n', 'secmlops.yaml: monitor.window: expected'],
    [
      'monitor: { window: 1m, flagRate: 0.2, drift: { psi: 0.2, ksPValue: 0.01 } }\n',
      'secmlops.yaml: monitor.flagRate: a flag-rate threshold needs monitor.detector',
    ],
    [
      'monitor: { window: 1m, drift: { psi: 0.2, ksPValue: 0.01 }, detector: { calibration: { split: val } } }\n',
      'secmlops.yaml: monitor.detector.calibration.split: split "val" is not in artifacts.dataset.splits',
    ],
    [
      'monitor: { window: 1m, drift: { psi: 0.2, ksPValue: 0.01 }, detector: { fpr: 0.6, calibration: { split: test } } }\n',
      'secmlops.yaml: monitor.detector.fpr: expected a false-positive rate in (0, 0.5)',
    ],
  ])('refuses the block %j', (monitor, message) => refused(monitor, message));
  test('refuses a monitor stage whose incidents no single responder could resolve', () => {
    const stages = (approval: string) => `  - evaluate\n  - release\n  - name: monitor\n    approval: ${approval}`;
    refused(MONITOR_BLOCK, 'stages[2].approval: incidents need a responder', stages('false'));
    refused(
      MONITOR_BLOCK,
      'stages[2].approval: an incident is resolved by one decision',
      stages('{ roles: [R8, R5] }'),
    );
    expect(parsePolicy(policyText(MONITOR_BLOCK, stages('{ roles: [R3] }')), { file: 'x' }).stages[2].approval).toEqual(
      {
        roles: ['R3'],
        quorum: 1,
        everyRole: true,
      },
    );
  });

  test('refuses a monitor without the stages it watches, and a block without the stage', () => {
    refused(MONITOR_BLOCK, 'the monitor stage watches what the release stage produced', '  - evaluate\n  - monitor');
    refused(
      MONITOR_BLOCK,
      'the policy has a monitor block but does not list the monitor stage',
      '  - evaluate\n  - release',
    );
  });
});
