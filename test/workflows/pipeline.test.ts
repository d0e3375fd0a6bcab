import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyFile } from '../../cli/verify.js';
import { stageWorkflowId } from '../../workflows/messages.js';
import {
  loadWrittenPolicy,
  makeFixture,
  policyFromText,
  sha256,
  testPolicy,
  testPolicyText,
  TEST_FILES,
  type Fixture,
} from '../helpers/fixture.js';
import { recordHistories } from '../helpers/histories.js';
import { result, startPipeline, startStack, status, uniqueId, waitForStage, type Stack } from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
});
afterAll(async () => stack?.stop());

const decide: Stack['decide'] = (...args) => stack.decide(...args);

describe('the pipeline on a real Temporal server', () => {
  test('plan, data and release pass with approvals given through the CLI code path, and the attestation verifies', async () => {
    const policy = await testPolicy(fx);
    const id = uniqueId('whole');
    const handle = await startPipeline(stack.client, policy, id);
    await waitForStage(handle, 'plan', ['waiting']);
    expect(await decide(id, 'plan', 'alice', 'approve', 'threat model reviewed')).toMatchObject({
      outcome: 'approved',
    });
    const atData = await waitForStage(handle, 'data', ['waiting']);
    const data = atData.stages.find((s) => s.name === 'data')!;
    expect(data.metrics['data.test.images']).toBe(10000);
    expect(data.splits?.[0].classCounts).toEqual(new Array(10).fill(1000));
    expect(data.manifest?.map((m) => m.path)).toEqual(policy.artifacts.dataset!.files.map((f) => f.path));
    await decide(id, 'data', 'dana');
    await waitForStage(handle, 'release', ['waiting']);
    expect(await decide(id, 'release', 'omar')).toMatchObject({ missingRoles: ['R5'] });
    expect(await decide(id, 'release', 'carol', 'approve', 'compliant')).toMatchObject({ outcome: 'approved' });
    const r = await result(handle);
    expect(r.state).toBe('passed');
    expect(r.stages.map((s) => s.state)).toEqual(['passed', 'passed', 'passed']);
    expect(
      r.audit.filter((a) => a.kind === 'decision').map((a) => `${a.stage}:${a.person}:${a.roles.join('+')}`),
    ).toEqual(['plan:alice:R3', 'data:dana:R1', 'release:omar:R7', 'release:carol:R5']);
    const release = r.stages.find((s) => s.name === 'release')!;
    const loaded = loadWrittenPolicy(policy, id);
    const report = await verifyFile(release.artifacts.attestation, { policy: loaded, artifactsDir: fx.artifacts });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.subjects.map((s) => s.name)).toEqual(policy.artifacts.dataset!.files.map((f) => `dataset/${f.path}`));
    // The release approves before it signs, so its two approvers are inside the attestation.
    expect(report.decisions.map((d) => `${d.stage}:${d.person}:${d.valid}`)).toEqual([
      'plan:alice:true',
      'data:dana:true',
      'release:omar:true',
      'release:carol:true',
    ]);
    // The whole audit trail re-checks: chain, signatures and every stage's approval rule.
    const exported = join(fx.dir, 'status.json');
    await writeFile(exported, JSON.stringify(r));
    expect(await verifyFile(exported, { policy: loaded, artifactsDir: fx.artifacts })).toMatchObject({
      ok: true,
      problems: [],
    });
    // A trail cut short (the pipeline's end and the release decisions dropped) does not verify, nor one whose
    // verdict the document misstates.
    const cut = {
      ...r,
      audit: r.audit.slice(
        0,
        r.audit.findIndex((a) => a.stage === 'release'),
      ),
    };
    await writeFile(exported, JSON.stringify(cut));
    expect((await verifyFile(exported, { policy: loaded, artifactsDir: fx.artifacts })).problems).toEqual(
      expect.arrayContaining([
        'the audit trail does not close with the pipeline’s end entry (entries cut from its end?)',
        'stage release did not end passed exactly once (no end entry)',
      ]),
    );
    await writeFile(exported, JSON.stringify({ ...r, state: 'failed' }));
    expect((await verifyFile(exported, { policy: loaded, artifactsDir: fx.artifacts })).problems).toEqual([
      'the document says the pipeline failed, but its trail ends passed',
    ]);
    // An edited decision does not.
    const first = r.audit.findIndex((a) => a.kind === 'decision');
    r.audit[first].comment = 'edited later';
    await writeFile(exported, JSON.stringify(r));
    const forged = await verifyFile(exported, { policy: loaded, artifactsDir: fx.artifacts });
    expect(forged.ok).toBe(false);
    expect(forged.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/the chain is broken/),
        "stage plan: the decision by alice does not verify against the cli channel's key",
      ]),
    );
    await recordHistories(stack.client, 'whole', [
      id,
      ...['plan', 'data', 'release'].map((s) => stageWorkflowId(id, s)),
    ]);
  });

  test('a rejection fails the stage and the pipeline, naming who rejected and why', async () => {
    const policy = await testPolicy(fx, { stages: '  - plan' });
    const id = uniqueId('reject');
    const handle = await startPipeline(stack.client, policy, id);
    await waitForStage(handle, 'plan', ['waiting']);
    expect(await decide(id, 'plan', 'bea', 'reject', 'model inversion not covered')).toMatchObject({
      outcome: 'rejected',
    });
    const r = await result(handle);
    expect(r.state).toBe('failed');
    expect(r.reason).toBe('stage plan rejected: rejected by bea: model inversion not covered');
    await recordHistories(stack.client, 'reject', [id, stageWorkflowId(id, 'plan')]);
  });

  test('an uncovered threat-model cell blocks approval and is listed in the status', async () => {
    const text = await testPolicyText(fx, { stages: '  - plan' });
    const policy = policyFromText(
      fx,
      text.replace('assets: [{ id: data }]', 'assets: [{ id: data }, { id: weights }]'),
    );
    const id = uniqueId('blocked');
    const handle = await startPipeline(stack.client, policy, id);
    const s = await waitForStage(handle, 'plan', ['blocked']);
    expect(s.stages[0].blockers).toHaveLength(6);
    expect(s.stages[0].blockers[0]).toBe('weights × Spoofing (S) has neither a control nor a risk acceptance');
    await expect(decide(id, 'plan', 'alice')).rejects.toThrow(
      'stage plan cannot be approved while it has open findings: weights × Spoofing (S)',
    );
    await decide(id, 'plan', 'alice', 'reject', 'cover the weights');
    expect((await result(handle)).state).toBe('failed');
  });

  test('a tampered dataset file fails the data stage, naming the file', async () => {
    const files = [
      { path: TEST_FILES[0], sha256: await sha256(join(fx.dataset, TEST_FILES[0])) },
      { path: TEST_FILES[1], sha256: 'f'.repeat(64) },
    ];
    const policy = await testPolicy(fx, { stages: '  - data', files });
    const handle = await startPipeline(stack.client, policy, uniqueId('tamper'));
    const r = await result(handle);
    expect(r.state).toBe('failed');
    expect(r.reason).toMatch(
      /^stage data failed: dataset file t10k-labels-idx1-ubyte.gz has SHA-256 [0-9a-f]{64}, but the policy pins f{64}$/,
    );
    expect(r.stages[0].tasks.map((t) => `${t.name}:${t.state}`)).toEqual([
      'manifest:failed',
      'validate:pending',
      'gates:pending',
      'approval:pending',
    ]);
  });

  test('a failed data gate fails the stage before anyone is asked to approve', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - data',
      extra: 'gates:\n  - { id: big-enough, metric: data.test.images, op: ">=", value: 20000 }',
    });
    const r = await result(await startPipeline(stack.client, policy, uniqueId('gate')));
    expect(r.reason).toBe('stage data failed: failed gates: big-enough (data.test.images >= 20000, measured 10000)');
  });
});

describe('escalation and deadline', () => {
  test('after the timeout the escalation role is notified, at the deadline the stage fails closed', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - name: plan\n    approval: { roles: [R3], timeout: 2s, escalation: R8, deadline: 4s }',
    });
    const id = uniqueId('deadline');
    const r = await result(await startPipeline(stack.client, policy, id));
    expect(r.state).toBe('failed');
    expect(r.reason).toBe('stage plan failed: deadline of 4s passed without approval');
    const notices = r.audit.filter((a) => a.kind === 'escalated' || a.kind === 'deadline');
    expect(notices.map((a) => [a.kind, a.roles.join(','), a.reason])).toEqual([
      ['escalated', 'R8', 'no decision after 2s; escalated to R8'],
      ['deadline', '', 'deadline of 4s passed without approval'],
    ]);
    const at = notices.map((a) => Date.parse(a.at));
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(2000);
    await recordHistories(stack.client, 'deadline', [id, stageWorkflowId(id, 'plan')]);
  });
});

describe('status', () => {
  test('shows each stage as a swimlane with its tasks and pending approval', async () => {
    const policy = await testPolicy(fx, { stages: '  - plan\n  - data' });
    const handle = await startPipeline(stack.client, policy, uniqueId('status'));
    const s = await waitForStage(handle, 'plan', ['waiting']);
    expect(s.stages.map((x) => x.state)).toEqual(['waiting', 'pending']);
    expect(s.stages[0].tasks).toEqual([
      { name: 'threat-model', state: 'done' },
      { name: 'approval', state: 'running' },
    ]);
    expect(s.stages[0].approval).toMatchObject({ roles: ['R3'], quorum: 1, missingRoles: ['R3'], approvers: [] });
    expect(s.stages[0].metrics).toEqual({ 'plan.cells': 6, 'plan.uncovered': 0 });
    await handle.terminate('test done');
    expect((await status(handle).catch(() => undefined))?.state ?? 'running').toBe('running');
  });
});
