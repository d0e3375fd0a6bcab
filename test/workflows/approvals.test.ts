// Every way a decision is refused, seen by the caller with its reason, leaving the stage's state unchanged.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPrivateKey, signDecision } from '../../activities/keys.js';
import { DecisionRefused, sendDecision, type DecisionRequest } from '../../client/decisions.js';
import { approveSignal, approveUpdate, stageWorkflowId } from '../../workflows/messages.js';
import { makeFixture, testPolicy, type Fixture } from '../helpers/fixture.js';
import { recordHistories } from '../helpers/histories.js';
import { startPipeline, startStack, status, uniqueId, waitForStage, type Stack } from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;
let id: string;
let strangerKey: string;

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
  strangerKey = join(fx.dir, 'stranger.key');
  await writeFile(strangerKey, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
  // Two R3 approvers are needed, so a first vote leaves the stage waiting and a second vote by the same person is testable.
  const policy = await testPolicy(fx, {
    stages: '  - name: plan\n    approval: { roles: [R3], quorum: 2, everyRole: false }\n  - data',
  });
  id = uniqueId('refusals');
  await startPipeline(stack.client, policy, id);
  await waitForStage(stack.client.workflow.getHandle(id), 'plan', ['waiting']);
});
afterAll(async () => {
  await stack.client.workflow
    .getHandle(id)
    .terminate('test done')
    .catch(() => {});
  await stack?.stop();
});

const base = (): DecisionRequest => ({
  workflowId: id,
  stage: 'plan',
  person: 'alice',
  decision: 'approve',
  comment: '',
  keyPath: fx.key('cli'),
});

async function expectRefused(req: Partial<DecisionRequest>, reason: string | RegExp): Promise<void> {
  const before = await status(stack.client.workflow.getHandle(id));
  const err = await sendDecision(stack.client, { ...base(), ...req }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DecisionRefused);
  expect((err as Error).message).toMatch(reason);
  const after = await status(stack.client.workflow.getHandle(id));
  expect(after.stages[0].approval).toEqual(before.stages[0].approval);
  // The pipeline may move on to later stages meanwhile; the refused stage's trail is what must not change.
  const plan = (a: typeof after) => a.audit.filter((e) => e.stage === 'plan');
  expect(plan(after)).toEqual(plan(before));
}

describe('the approval validator refuses, with the reason, and changes nothing', () => {
  test('a signature by a key the policy does not pin', () =>
    expectRefused({ keyPath: strangerKey }, "the signature does not verify against the cli channel's public key"));

  test("a signature by another channel's key", () =>
    expectRefused({ keyPath: fx.key('slack') }, "the signature does not verify against the cli channel's public key"));

  test('a channel with no pinned key', () =>
    expectRefused(
      { channel: 'github', keyPath: fx.key('github') },
      'channel "github" has no public key pinned in the policy',
    ));

  test('an unknown person', () => expectRefused({ person: 'mallory' }, 'unknown person "mallory"'));

  test('a person without a required role', () =>
    expectRefused({ person: 'dana' }, 'dana holds none of the roles this stage needs (R3)'));

  test("the change's author (separation of duties)", () =>
    expectRefused(
      { person: 'mia' },
      'mia is the author of this change and cannot decide on it (separation of duties)',
    ));

  test('a stage that has not started', () =>
    expectRefused(
      { stage: 'data', person: 'dana' },
      `stage data of ${id} is not waiting for approval (it has not started)`,
    ));

  test('a decision issued in the future', () =>
    expectRefused({ issuedAt: new Date(Date.now() + 3_600_000).toISOString() }, /^issuedAt .* is in the future$/));

  test('a second vote by the same person', async () => {
    await expect(sendDecision(stack.client, base())).resolves.toMatchObject({ missingRoles: [] });
    await expectRefused({}, 'alice has already decided on stage plan');
  });

  test('a signature made for another pipeline (replay)', async () => {
    const key = await loadPrivateKey(fx.key('cli'));
    const subjectDigest = (await status(stack.client.workflow.getHandle(id))).subjectDigest;
    const forOther = signDecision(
      {
        workflowId: 'some-other-pipeline',
        stage: 'plan',
        person: 'bea',
        channel: 'cli',
        decision: 'approve',
        comment: '',
        issuedAt: new Date().toISOString(),
        subjectDigest,
      },
      key,
    );
    const handle = stack.client.workflow.getHandle(stageWorkflowId(id, 'plan'));
    await expect(handle.executeUpdate(approveUpdate, { args: [forOther] })).rejects.toMatchObject({
      cause: { message: `the decision was signed for workflow some-other-pipeline, not ${id}` },
    });
    // Changing the workflow ID after signing breaks the signature.
    await expect(
      handle.executeUpdate(approveUpdate, { args: [{ ...forOther, workflowId: id }] }),
    ).rejects.toMatchObject({
      cause: { message: "the signature does not verify against the cli channel's public key" },
    });
  });

  test('the signal twin records a refused decision in the audit trail and accepts a valid one', async () => {
    const handle = stack.client.workflow.getHandle(stageWorkflowId(id, 'plan'));
    const key = await loadPrivateKey(fx.key('cli'));
    const subjectDigest = (await status(stack.client.workflow.getHandle(id))).subjectDigest;
    const d = {
      workflowId: id,
      stage: 'plan',
      person: 'bea',
      channel: 'cli' as const,
      decision: 'approve' as const,
      comment: 'ok',
      issuedAt: new Date().toISOString(),
      subjectDigest,
    };
    await handle.signal(approveSignal, { ...signDecision(d, key), comment: 'forged comment' });
    await handle.signal(approveSignal, signDecision(d, key));
    // The pipeline goes on to data, which waits; the plan stage's own result holds its audit trail.
    const plan = (await handle.result()) as {
      status: { state: string };
      audit: { kind: string; person?: string; reason?: string }[];
    };
    expect(plan.status.state).toBe('passed');
    expect(
      plan.audit.filter((a) => a.kind === 'decision' || a.kind === 'refused').map((a) => [a.kind, a.person, a.reason]),
    ).toEqual([
      ['decision', 'alice', undefined],
      ['refused', 'bea', "the signature does not verify against the cli channel's public key"],
      ['decision', 'bea', undefined],
    ]);
    await expectRefused({ person: 'bea' }, `stage plan of ${id} is not waiting for approval (it has finished)`);
    await recordHistories(stack.client, 'refusals', [stageWorkflowId(id, 'plan')]);
  });
});
