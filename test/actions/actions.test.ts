// The three GitHub Actions, run as GitHub runs them (node dist/index.cjs with INPUT_* and a webhook payload), against
// the real dev server and a local stand-in for GitHub's REST API. The attacks on GitHub starts and PR-comment
// decisions are in github-trust.test.ts.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { appCredentials } from '../../github/credentials.js';
import type { GitHubStandIn } from '../helpers/github-api.js';
import {
  basePolicy,
  comment,
  event,
  harness,
  oidcStart,
  reports,
  repliesTo,
  runAction,
  useActionsHarness,
  workspace,
  JOB_TOKEN,
  WORKER_TOKEN,
  type Json,
} from '../helpers/actions.js';
import { startGitHubStandIn } from '../helpers/github-api.js';
import { recordHistories } from '../helpers/histories.js';
import { waitUntil } from '../helpers/processes.js';
import { status as pipelineStatusOf, uniqueId, type Stack } from '../helpers/temporal.js';

useActionsHarness();
let stack: Stack;
let gh: GitHubStandIn;
beforeAll(() => {
  ({ stack, gh } = harness());
});

const PLAN_THEN_DATA = '  - name: plan\n    approval: { roles: [R3] }\n  - name: data\n    approval: false';

describe('start', () => {
  test('a missing required input fails the step, naming it', async () => {
    const r = await runAction('start', 'pull_request', await event('pull_request.opened', 100), await workspace({}), {
      'temporal-address': '',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('::error::Input required and not supplied: temporal-address');
  });

  test('a bad policy on the base commit fails the step, naming the file and the path', async () => {
    const ws = await workspace({ stages: '  - name: plan\n    approval: { roles: [R42] }' });
    const r = await runAction('start', 'pull_request', await event('pull_request.opened', 100), ws);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /::error::SecMLOps refused the start: .*acme\/vision@5b0e2d8c1f4a:secmlops\.yaml: stages\[0\]\.approval\.roles.*R42/,
    );
  });

  test('starts once per commit, supersedes on a new push, and the worker reports the verdict in one PR comment', async () => {
    const ws = await workspace({
      stages: PLAN_THEN_DATA,
      extra: 'gates:\n  - { id: test-size, metric: data.test.images, op: ">=", value: 10000 }',
    });
    const opened = await event('pull_request.opened', 101);
    const sha1 = ((opened.pull_request as Json).head as Json).sha as string;
    const first = await runAction('start', 'pull_request', opened, ws);
    expect(first.code).toBe(0);
    expect(first.outputs['workflow-id']).toBe('secmlops-acme-vision-pr101');
    expect(first.outputs['console-url']).toBe(
      'http://localhost:8233/namespaces/default/workflows/secmlops-acme-vision-pr101',
    );
    // The pending status comes from the worker's credentials, not the job's token.
    await waitUntil('the pending status', async () => gh.statuses.find((s) => s.sha === sha1 && s.state === 'pending'));
    expect(gh.statuses.filter((s) => s.sha === sha1)).toEqual([
      expect.objectContaining({
        state: 'pending',
        context: 'secmlops',
        token: WORKER_TOKEN,
        target_url: first.outputs['console-url'],
      }),
    ]);
    expect(gh.statuses.some((s) => s.token === JOB_TOKEN)).toBe(false);

    // A re-run of the same job attaches to the same run.
    const again = await runAction('start', 'pull_request', opened, ws);
    expect(again.code).toBe(0);
    expect(again.outputs['run-id']).toBe(first.outputs['run-id']);
    expect(again.stdout).toContain('attached to secmlops-acme-vision-pr101');
    expect(gh.statuses.filter((s) => s.sha === sha1)).toHaveLength(1);

    // A new push cancels the superseded run, whose commit then gets an error status from the worker.
    const sync = await event('pull_request.synchronize', 101);
    const sha2 = ((sync.pull_request as Json).head as Json).sha as string;
    const second = await runAction('start', 'pull_request', sync, ws);
    expect(second.code).toBe(0);
    expect(second.outputs['run-id']).not.toBe(first.outputs['run-id']);
    await waitUntil('the superseded commit to be marked', async () =>
      gh.statuses.find((s) => s.sha === sha1 && s.state === 'error'),
    );
    expect(gh.statuses.find((s) => s.sha === sha1 && s.state === 'error')).toMatchObject({
      token: WORKER_TOKEN,
      description: 'SecMLOps cancelled: the pipeline was cancelled',
    });
    expect(reports(101)).toHaveLength(1);

    // alice (R3) approves plan from a PR comment; data passes its gate and the pipeline passes.
    const approved = await runAction(
      'approve',
      'issue_comment',
      await comment(101, 'alice-sec', '/secmlops approve plan threat model reviewed'),
      ws,
    );
    expect(approved.code).toBe(0);
    expect(approved.outputs.outcome).toBe('accepted');
    await waitUntil('the final status', async () => gh.statuses.find((s) => s.sha === sha2 && s.state === 'success'));
    const final = gh.statuses.find((s) => s.sha === sha2 && s.state === 'success')!;
    expect(final).toMatchObject({
      token: WORKER_TOKEN,
      context: 'secmlops',
      description: 'SecMLOps pipeline passed',
      target_url: first.outputs['console-url'],
    });
    // One comment, updated in place: the cancelled run's report became the passed run's.
    await waitUntil('the report to show the verdict', async () =>
      reports(101)[0]?.body.includes('passed') ? true : undefined,
    );
    const [report] = reports(101);
    expect(reports(101)).toHaveLength(1);
    expect(report.body).toContain('### SecMLOps ✅ passed');
    expect(report.body).toMatch(/\| test-size \| data \| `data\.test\.images` \| >= 10000 \| 10000 \| pass \|/);
    expect(report.body).toMatch(
      /\| plan \| approve \| alice \| R3 \| github \| [0-9T:.-]+Z \| threat model reviewed \|/,
    );
    expect(report.body).toMatch(/\| data \| t10k-images-idx3-ubyte\.gz \| `sha256:[0-9a-f]{64}` \|/);
    // The run that reported to GitHub joins the replay corpus.
    await recordHistories(stack.client, 'github', ['secmlops-acme-vision-pr101']);
  }, 180_000);
});

/** What the start action does, done by the test: an OIDC token for `audience` from the job's issuer. */
describe('the worker report', () => {
  test('a report GitHub refuses leaves the verdict standing and says why in the status', async () => {
    await basePolicy({ stages: '  - name: data\n    approval: false' });
    // A commit GitHub does not know: the statuses endpoint answers 404, which no retry will change.
    await event('pull_request.opened', 105, (e) =>
      Object.assign((e.pull_request as Json).head as Json, { sha: 'not-a-commit' }),
    );
    const r = await oidcStart(uniqueId('report-refused'), {
      repo: 'acme/vision',
      pr: 105,
      headSha: 'not-a-commit',
      author: 'mia-ml',
    });
    expect(r.state).toBe('passed');
    expect(r.github).toEqual({
      reported: false,
      error: expect.stringMatching(
        /^GitHub POST \/repos\/acme\/vision\/statuses\/not-a-commit answered 404: Not Found$/,
      ) as unknown,
    });
  }, 60_000);
});

describe('approve', () => {
  test('an approver is accepted; the author, a non-member, a bot, an edited comment and a malformed command are refused with the reason', async () => {
    const ws = await workspace({ stages: '  - name: plan\n    approval: { roles: [R3], quorum: 2 }' });
    const key = {};
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 102), ws)).code).toBe(0);
    const cases: [string, Json, RegExp][] = [
      [
        'the PR author',
        await comment(102, 'mia-ml', '/secmlops approve plan'),
        /the pipeline refused your approval: mia is the author of this change and cannot decide on it/,
      ],
      [
        'a non-member',
        await comment(102, 'alice-sec', '/secmlops approve plan', (e) =>
          Object.assign(e.comment as Json, { author_association: 'NONE' }),
        ),
        /only the repository's owners, members and collaborators may decide; your association is NONE/,
      ],
      [
        'a bot',
        await comment(102, 'dependabot[bot]', '/secmlops approve plan', (e) =>
          Object.assign((e.comment as Json).user as Json, { type: 'Bot' }),
        ),
        /comments by bots are not decisions/,
      ],
      [
        'an edited comment',
        await event('issue_comment.edited', 102),
        /edited comments are not decisions \(this one was edited\)/,
      ],
      [
        'a malformed command',
        await comment(102, 'alice-sec', '/secmlops aprove plan'),
        /I could not read that command; usage:/,
      ],
      [
        'a rejection without a reason',
        await comment(102, 'alice-sec', '/secmlops reject plan'),
        /a rejection needs a reason/,
      ],
      [
        'someone not in the policy',
        await comment(102, 'eve-x', '/secmlops approve plan'),
        /GitHub user eve-x is not a person in the policy/,
      ],
    ];
    for (const [name, payload, reason] of cases) {
      const before = gh.reactions.length;
      const r = await runAction('approve', 'issue_comment', payload, ws, key);
      expect({ name, code: r.code, outcome: r.outputs.outcome }).toEqual({ name, code: 0, outcome: 'refused' });
      expect(r.outputs.reason).toMatch(reason);
      expect(gh.reactions.slice(before)).toEqual([
        { repo: 'acme/vision', comment: (payload.comment as Json).id, content: '-1' },
      ]);
      expect(repliesTo(102).at(-1)).toMatch(reason);
    }
    // Nothing was decided; a comment that is not a command is ignored without a reply.
    const ignored = await runAction(
      'approve',
      'issue_comment',
      await comment(102, 'alice-sec', 'looks good to me'),
      ws,
      key,
    );
    expect(ignored.outputs.outcome).toBe('ignored');
    const status = await pipelineStatusOf(stack.client.workflow.getHandle('secmlops-acme-vision-pr102'));
    expect(status.audit.filter((a) => a.kind === 'decision')).toEqual([]);

    const ok = await runAction(
      'approve',
      'issue_comment',
      await comment(102, 'alice-sec', '/secmlops approve plan fine by me'),
      ws,
      key,
    );
    expect(ok.outputs.outcome).toBe('accepted');
    expect(ok.outputs.reason).toBe(
      'your approval of plan was accepted; stage plan still needs more approvals to reach its quorum.',
    );
    expect(repliesTo(102).at(-1)).toBe(
      '@alice-sec your approval of plan was accepted; stage plan still needs more approvals to reach its quorum.',
    );
    expect(gh.reactions.at(-1)?.content).toBe('+1');
    await stack.client.workflow.getHandle('secmlops-acme-vision-pr102').cancel();
  }, 180_000);
});

describe('gate', () => {
  test('fails the step on a failed gate, naming it, and passes on a pass', async () => {
    const gate = (value: number) =>
      `gates:\n  - { id: enough-images, metric: data.test.images, op: ">=", value: ${value} }`;
    // Each PR's base commit holds its own policy: the worker reads it when that PR's pipeline starts.
    const failing = await workspace({ stages: '  - name: data\n    approval: false', extra: gate(20000) });
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 103), failing)).code).toBe(0);
    const passing = await workspace({ stages: '  - name: data\n    approval: false', extra: gate(10000) });
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 104), passing)).code).toBe(0);
    const failed = await runAction('gate', 'pull_request', await event('pull_request.opened', 103), failing, {
      timeout: '2m',
    });
    expect(failed.code).toBe(1);
    expect(failed.outputs.verdict).toBe('failed');
    expect(failed.outputs['failed-gates']).toBe('enough-images');
    expect(failed.stdout).toMatch(/::error::SecMLOps failed: stage data failed: .*; failed gates: enough-images/);
    expect(failed.summary).toContain('| enough-images | data | `data.test.images` | >= 20000 | 10000 | **fail** |');
    const passed = await runAction('gate', 'pull_request', await event('pull_request.opened', 104), passing, {
      timeout: '2m',
    });
    expect(passed.code).toBe(0);
    expect(passed.outputs.verdict).toBe('passed');
    expect(passed.summary).toContain('### SecMLOps ✅ passed');
  }, 180_000);
});

describe('GitHub App credentials', () => {
  test('an installation token is fetched with an RS256 JWT; a wrong key is refused', async () => {
    const pair = () =>
      generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      });
    const app = pair();
    const stranger = pair();
    const server = await startGitHubStandIn({
      tokens: [],
      app: { id: '123456', installation: '7890', publicKeyPem: app.publicKey },
    });
    const dir = await mkdtemp(join(tmpdir(), 'app-'));
    await writeFile(join(dir, 'app.pem'), app.privateKey);
    await writeFile(join(dir, 'stranger.pem'), stranger.privateKey);
    try {
      expect(await appCredentials('123456', join(dir, 'app.pem'), '7890', server.url).token()).toMatch(
        /^ghs_installation\d+$/,
      );
      await expect(appCredentials('123456', join(dir, 'stranger.pem'), '7890', server.url).token()).rejects.toThrow(
        'GitHub refused an installation token for App 123456, installation 7890: 401',
      );
    } finally {
      await server.close();
    }
  });
});

describe('bundles', () => {
  test('each committed dist/ bundle matches a fresh build', async () => {
    const out = await mkdtemp(join(tmpdir(), 'dist-'));
    await promisify(execFile)(process.execPath, ['actions/build.mjs', '--out', out]);
    for (const action of ['start', 'gate', 'approve']) {
      const fresh = await readdir(join(out, action));
      expect(fresh.sort()).toEqual((await readdir(`actions/${action}/dist`)).sort());
      for (const f of fresh) {
        const same = (await readFile(join(out, action, f))).equals(await readFile(join('actions', action, 'dist', f)));
        expect({ file: `actions/${action}/dist/${f}`, current: same }).toEqual({
          file: `actions/${action}/dist/${f}`,
          current: true,
        });
      }
    }
  }, 60_000);
});

describe('the example workflow for users', () => {
  test('uses only inputs the actions declare, and gives each job the permissions it needs', async () => {
    const { parse } = await import('yaml');
    const wf = parse(await readFile('examples/github/secmlops.yml', 'utf8')) as {
      jobs: Record<
        string,
        { permissions: Record<string, string>; steps: { uses?: string; with?: Record<string, string> }[] }
      >;
    };
    for (const job of Object.values(wf.jobs)) {
      for (const step of job.steps.filter((s) => s.uses?.includes('/actions/'))) {
        const action = /\/actions\/(\w+)@/.exec(step.uses!)![1];
        const declared = Object.keys(
          (parse(await readFile(`actions/${action}/action.yml`, 'utf8')) as { inputs: Record<string, unknown> }).inputs,
        );
        for (const input of Object.keys(step.with ?? {}))
          expect({ action, input, declared: declared.includes(input) }).toEqual({ action, input, declared: true });
      }
    }
    expect(wf.jobs.start.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    expect(wf.jobs.approve.permissions).toMatchObject({ issues: 'write', 'pull-requests': 'write' });
  });
});
