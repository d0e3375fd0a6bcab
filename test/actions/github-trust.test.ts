// GitHub starts and PR-comment decisions, attacked: OIDC tokens for the wrong pipeline, reused or from another
// repository, commits GitHub does not confirm, squatted workflow IDs, comments from elsewhere or edited, and a rogue
// worker that polls its own task queue and calls the activities that hold the workers' keys.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { NativeConnection, Worker } from '@temporalio/worker';
import { mkdtemp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClaimedSubject, Evidence } from '../../policy/index.js';
import { startAudience } from '../../policy/index.js';
import { decodePayloads } from '../../worker/connection.js';
import type { PipelineStatus } from '../../workflows/messages.js';
import type { Fixture } from '../helpers/fixture.js';
import { testPolicy } from '../helpers/fixture.js';
import type { GitHubStandIn } from '../helpers/github-api.js';
import {
  basePolicy,
  comment,
  event,
  harness,
  oidcStart,
  oidcToken,
  runAction,
  useActionsHarness,
  workspace,
  WORKER_TOKEN,
  type Json,
} from '../helpers/actions.js';
import { waitUntil } from '../helpers/processes.js';
import { status as pipelineStatusOf, testAddress, uniqueId, type Stack } from '../helpers/temporal.js';

useActionsHarness();
let fx: Fixture;
let stack: Stack;
let gh: GitHubStandIn;
beforeAll(() => {
  ({ fx, stack, gh } = harness());
});

describe('GitHub starts are proven by the job’s OIDC token and confirmed through GitHub', () => {
  const claimed = (pr: number, headSha = '9f3c2a1b7d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a'): ClaimedSubject => ({
    repo: 'acme/vision',
    pr,
    headSha,
    author: 'mia-ml',
  });
  const refused = async (id: string, subject: ClaimedSubject, reason: RegExp, token?: string) => {
    const r = await oidcStart(id, subject, token);
    expect(r.state).toBe('failed');
    expect(r.reason).toMatch(reason);
    // Nothing was reported to GitHub for a start that was not proven.
    expect(
      gh.statuses.filter((s) => s.sha === subject.headSha && s.token === WORKER_TOKEN && s.description.includes(id)),
    ).toEqual([]);
  };

  beforeAll(() => basePolicy({ stages: '  - name: data\n    approval: false' }));

  test('a token requested for another pipeline (wrong audience) is refused', async () => {
    await event('pull_request.opened', 110);
    await refused(
      'secmlops-acme-vision-pr110',
      claimed(110),
      /OIDC token was refused: .*audience/,
      await oidcToken(startAudience('secmlops-acme-vision-pr999')),
    );
  });

  test('a token used twice is refused the second time (single use)', async () => {
    await event('pull_request.opened', 111);
    const token = await oidcToken(startAudience('secmlops-acme-vision-pr111'));
    expect((await oidcStart('secmlops-acme-vision-pr111', claimed(111), token)).state).toBe('passed');
    await refused('secmlops-acme-vision-pr111', claimed(111), /OIDC token was refused: .*already used/, token);
  });

  test('a repository outside the workers’ allow-list is refused', async () => {
    await event('pull_request.opened', 112);
    gh.oidc.claims = { ...gh.oidc.claims, repository: 'evil/fork' };
    await refused('secmlops-acme-vision-pr112', claimed(112), /OIDC token was refused: .*evil\/fork/);
  });

  test('a head commit GitHub does not confirm (a forged or superseded SHA) is refused', async () => {
    await event('pull_request.opened', 113);
    await refused(
      'secmlops-acme-vision-pr113',
      claimed(113, 'c'.repeat(40)),
      /PR #113's head is 9f3c2a1b7d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a, not c{40}/,
    );
  });

  test('a PR into a branch other than the policy branch is refused (its author may have written that branch’s policy)', async () => {
    await event('pull_request.opened', 118, (e) =>
      Object.assign((e.pull_request as Json).base as Json, { ref: 'feature-x' }),
    );
    await refused(
      'secmlops-acme-vision-pr118',
      claimed(118),
      /PR #118 targets feature-x, but policies are read from main: only PRs into main are checked/,
    );
  });

  test('a token for one PR cannot start another PR’s pipeline', async () => {
    await event('pull_request.opened', 114);
    await event('pull_request.opened', 115); // the token's ref now names PR 115
    await refused(
      'secmlops-acme-vision-pr114',
      claimed(114),
      /the start claims PR #114, but the token was issued for PR #115/,
    );
  });

  test('a start that brings its own policy, or no proof, is refused; the PR status is untouched', async () => {
    const legacy = await stack.client.workflow.start('secmlopsPipeline', {
      taskQueue: 'secmlops',
      workflowId: uniqueId('own-policy'),
      args: [claimed(116), await testPolicy(fx)],
    });
    expect(((await legacy.result()) as PipelineStatus).reason).toMatch(/a policy body from the client is refused/);
    const unsigned = await stack.client.workflow.start('secmlopsPipeline', {
      taskQueue: 'secmlops',
      workflowId: uniqueId('unsigned'),
      args: [
        {
          start: {
            kind: 'cli',
            request: {
              v: 1,
              workflowId: 'x',
              subject: claimed(116),
              policyRef: 'secmlops.yaml',
              issuedAt: new Date().toISOString(),
            },
            signature: 'AAAA',
          },
        },
      ],
    });
    expect(((await unsigned.result()) as PipelineStatus).reason).toMatch(
      /the start was refused: the start request was signed for pipeline x/,
    );
  });

  test('a squatter who started the PR’s workflow ID first is replaced, not attached to', async () => {
    await basePolicy({ stages: '  - name: plan\n    approval: { roles: [R3] }' });
    const opened = await event('pull_request.opened', 117);
    const sha = ((opened.pull_request as Json).head as Json).sha as string;
    // The squatter writes the memo the old start action matched on, and a subject claiming to come from GitHub.
    const squat = await stack.client.workflow.start('secmlopsPipeline', {
      taskQueue: 'secmlops',
      workflowId: 'secmlops-acme-vision-pr117',
      args: [
        { ...claimed(117, sha), source: 'github' },
        await testPolicy(fx, { stages: '  - name: plan\n    approval: false' }),
      ],
      memo: { headSha: sha },
    });
    const r = await runAction('start', 'pull_request', opened, await mkdtemp(join(fx.dir, 'ws-')));
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('attached to');
    expect(r.outputs['run-id']).not.toBe(squat.firstExecutionRunId);
    const s = await pipelineStatusOf(stack.client.workflow.getHandle('secmlops-acme-vision-pr117'));
    expect(s.subject).toMatchObject({ repo: 'acme/vision', pr: 117, headSha: sha, author: 'mia-ml', source: 'github' });
    await stack.client.workflow.getHandle('secmlops-acme-vision-pr117').terminate('test done');
  }, 60_000);
});

describe('PR-comment decisions are read and signed by a worker', () => {
  test('a comment from another PR, an edited one, one written before the stage began, and a forged event are refused', async () => {
    const ws = await workspace({ stages: '  - name: plan\n    approval: { roles: [R3] }' });
    // A comment alice wrote before this run existed (about an earlier commit, say).
    const early = gh.addComment({
      repo: 'acme/vision',
      issue: 120,
      login: 'alice-sec',
      body: '/secmlops approve plan',
      createdAt: '2020-01-01T00:00:00Z',
    });
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 120), ws)).code).toBe(0);
    await waitUntil('plan to wait', async () =>
      (await pipelineStatusOf(stack.client.workflow.getHandle('secmlops-acme-vision-pr120'))).stages[0]?.state ===
      'waiting'
        ? true
        : undefined,
    );
    const elsewhere = gh.addComment({
      repo: 'acme/vision',
      issue: 121,
      login: 'alice-sec',
      body: '/secmlops approve plan',
    });
    const cases: [string, Json, RegExp][] = [
      // The event says PR 120, but the comment GitHub holds under that ID is on PR 121.
      [
        'a comment from another PR',
        await event('issue_comment.created', 120, (e) =>
          Object.assign(e.comment as Json, {
            id: elsewhere.id,
            body: '/secmlops approve plan',
            user: { login: 'alice-sec', type: 'User' },
          }),
        ),
        /does not belong to acme\/vision#120/,
      ],
      [
        'an edited comment',
        await comment(120, 'alice-sec', '/secmlops approve plan', () => {}, { updatedAt: '2099-01-01T00:00:00Z' }),
        /was edited .*edited comments are not decisions/,
      ],
      [
        'a comment written before the stage began',
        await event('issue_comment.created', 120, (e) =>
          Object.assign(e.comment as Json, {
            id: early.id,
            body: '/secmlops approve plan',
            user: { login: 'alice-sec', type: 'User' },
          }),
        ),
        /was written at 2020-01-01T00:00:00Z, before stage plan of this run began/,
      ],
      // The event claims an approval; GitHub's copy of the comment says something else.
      [
        'an event that misquotes the comment',
        await comment(120, 'alice-sec', 'nice work', (e) =>
          Object.assign(e.comment as Json, { body: '/secmlops approve plan' }),
        ),
        /is not a SecMLOps decision/,
      ],
      [
        'a member whose association GitHub reports as NONE',
        await comment(120, 'alice-sec', '/secmlops approve plan', () => {}, { association: 'NONE' }),
        /association is NONE/,
      ],
    ];
    for (const [name, payload, reason] of cases) {
      const r = await runAction('approve', 'issue_comment', payload, ws);
      expect({ name, outcome: r.outputs.outcome }).toEqual({ name, outcome: 'refused' });
      expect(r.outputs.reason).toMatch(reason);
    }
    const s = await pipelineStatusOf(stack.client.workflow.getHandle('secmlops-acme-vision-pr120'));
    expect(s.audit.filter((a) => a.kind === 'decision')).toEqual([]);
    // A genuine comment is accepted, signed by the github channel key the worker holds.
    const ok = await runAction(
      'approve',
      'issue_comment',
      await comment(120, 'alice-sec', '/secmlops approve plan all good'),
      ws,
    );
    expect(ok.outputs.outcome).toBe('accepted');
    const after = await pipelineStatusOf(stack.client.workflow.getHandle('secmlops-acme-vision-pr120'));
    expect(after.audit.find((a) => a.kind === 'decision')).toMatchObject({
      person: 'alice',
      channel: 'github',
      comment: 'all good',
      subjectDigest: after.subjectDigest,
    });
  }, 120_000);
});

describe('a rogue worker cannot borrow the workers’ GitHub credentials and keys', () => {
  test('the comment signer and the verdict report believe only signed start evidence and a checked dossier', async () => {
    await basePolicy({ stages: '  - name: plan\n    approval: { roles: [R3] }', githubChannel: true });
    const opened = await event('pull_request.opened', 130);
    expect((await runAction('start', 'pull_request', opened, await mkdtemp(join(fx.dir, 'ws-')))).code).toBe(0);
    const pipeline = stack.client.workflow.getHandle('secmlops-acme-vision-pr130');
    // Genuine start evidence, as anyone can read it from the pipeline's history.
    const history = await pipeline.fetchHistory();
    const completed = history.events!.find(
      (e) => e.activityTaskCompletedEventAttributes,
    )!.activityTaskCompletedEventAttributes!;
    const [resolved] = (await decodePayloads(completed.result!.payloads)) as { evidence: Evidence<'start'> }[];
    const start = resolved.evidence;
    const native = await NativeConnection.connect({ address: testAddress() });
    const rogue = await Worker.create({
      connection: native,
      taskQueue: 'rogue',
      workflowsPath: resolve('test/helpers/rogue-workflows.ts'),
    });
    try {
      await rogue.runUntil(async () => {
        const run = <T>(fn: string, arg: T) =>
          stack.client.workflow.execute(fn, {
            taskQueue: 'rogue',
            workflowId: uniqueId('rogue'),
            args: [arg],
          }) as Promise<string>;
        const aliceComment = gh.addComment({
          repo: 'acme/vision',
          issue: 130,
          login: 'alice-sec',
          body: '/secmlops approve plan',
        });
        // A forged start evidence that maps the rogue's login to alice: its signature no longer verifies.
        const forged = JSON.parse(JSON.stringify(start)) as Evidence<'start'>;
        forged.body.payload.policy.people.find((p) => p.id === 'alice')!.github = 'mallory';
        expect(
          await run('rogueCommentDecision', { commentId: aliceComment.id, stage: 'plan', notBefore: 0, start: forged }),
        ).toMatch(/^no valid start evidence: the start evidence's signature does not verify/);
        // Genuine evidence, asked by a workflow that is not this pipeline's plan stage.
        expect(
          await run('rogueCommentDecision', { commentId: aliceComment.id, stage: 'plan', notBefore: 0, start }),
        ).toMatch(/^only secmlops-acme-vision-pr130\/plan may ask for its decisions \(asked by test-rogue-/);
        // A green status for the PR without a dossier that checks out: refused, nothing set.
        const statusesBefore = gh.statuses.length;
        const status = {
          workflowId: 'secmlops-acme-vision-pr130',
          policyName: 'test',
          subject: start.body.payload.subject,
          state: 'passed',
          stages: [],
          audit: [],
        };
        expect(await run('rogueReport', { status, verdict: 'passed', runId: 'x', start })).toBe(
          'not reporting a pass to GitHub: no dossier',
        );
        const hollow = { pipelineId: 'secmlops-acme-vision-pr130', start, stages: [], audit: [] };
        expect(await run('rogueReport', { status, verdict: 'passed', runId: 'x', start, dossier: hollow })).toMatch(
          /^not reporting a pass to GitHub: .*the audit trail is empty/,
        );
        expect(gh.statuses.slice(statusesBefore)).toEqual([]);
      });
    } finally {
      await native.close();
      await pipeline.terminate('test done');
    }
  }, 120_000);
});
