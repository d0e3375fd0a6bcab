// The three GitHub Actions, run as GitHub runs them (node dist/index.cjs with INPUT_* and a webhook payload), against
// the real dev server and a local stand-in for GitHub's REST API.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { appCredentials, tokenCredentials } from '../../github/credentials.js';
import { REPORT_MARKER } from '../../github/report.js';
import type { PipelineResult, PipelineStatus } from '../../workflows/messages.js';
import { startAudience, type ClaimedSubject, type PipelineInput } from '../../policy/index.js';
import { startWithInput } from '../../client/start.js';
import { NativeConnection, Worker } from '@temporalio/worker';
import { decodePayloads } from '../../worker/connection.js';
import type { Evidence } from '../../policy/index.js';
import { makeFixture, testPolicy, testPolicyText, type Fixture, type PolicyOptions } from '../helpers/fixture.js';
import { startGitHubStandIn, type GitHubStandIn } from '../helpers/github-api.js';
import { recordHistories } from '../helpers/histories.js';
import { waitUntil } from '../helpers/processes.js';
import { startStack, testAddress, uniqueId, type Stack } from '../helpers/temporal.js';

const JOB_TOKEN = 'ghs_job0000000000000000000000000000000';
const WORKER_TOKEN = 'github_pat_worker000000000000000000';
const FIXTURES = 'test/fixtures/github';

let fx: Fixture;
let stack: Stack;
let gh: GitHubStandIn;

beforeAll(async () => {
  fx = await makeFixture();
  gh = await startGitHubStandIn({ tokens: [JOB_TOKEN, WORKER_TOKEN] });
  // The worker holds its own GitHub credentials and trusts the stand-in's OIDC issuer for acme/vision only; the
  // actions only ever get the job's token and an OIDC token.
  const trust = { ...fx.trust, oidc: { issuer: gh.oidc.issuer, jwksUrl: gh.oidc.jwksUrl, repositories: ['acme/vision'], policyPath: 'secmlops.yaml' } };
  gh.branches.set('acme/vision:main', BASE_SHA);
  stack = await startStack(fx, testAddress(), tokenCredentials(WORKER_TOKEN, gh.url), undefined, trust);
});
afterAll(async () => {
  await stack?.stop();
  await gh?.close();
});

type Json = Record<string, unknown>;

/**
 * A webhook payload. For pull_request events GitHub's side is set to match, as a real PR would be: the PR (head,
 * base, author) behind the API, and the claims of the OIDC token the job will get (refs/pull/N/merge).
 */
async function event(name: string, pr: number, edit: (e: Json) => void = () => {}): Promise<Json> {
  const e = JSON.parse(await readFile(join(FIXTURES, `${name}.json`), 'utf8')) as Json;
  if (e.pull_request) {
    e.number = pr;
    (e.pull_request as Json).number = pr;
  }
  if (e.issue) Object.assign(e.issue as Json, { number: pr });
  edit(e);
  const p = e.pull_request as { number: number; title?: string; user: { login: string }; head: { sha: string }; base: { sha: string; ref: string } } | undefined;
  if (p) {
    gh.pulls.set(`acme/vision#${pr}`, { number: pr, title: p.title, user: { login: p.user.login }, head: { sha: p.head.sha }, base: { sha: p.base.sha, ref: p.base.ref } });
    gh.oidc.claims = { repository: 'acme/vision', ref: `refs/pull/${pr}/merge`, sha: 'e'.repeat(40), event_name: 'pull_request' };
  }
  return e;
}

const BASE_SHA = '5b0e2d8c1f4a7e93d6b2c0a8f1e4d7c9b3a6e2f1';

/** The policy on the PR's base commit, where the workers read it (keys inline: no files to fetch beside it). */
async function basePolicy(opts: PolicyOptions): Promise<void> {
  let text = await testPolicyText(fx, { githubChannel: true, ...opts });
  for (const m of text.matchAll(/\{ publicKeyFile: (keys\/\w+\.pub) \}/g)) text = text.replace(m[0], `{ publicKey: ${(await readFile(join(fx.dir, m[1]), 'utf8')).trim()} }`);
  gh.files.set(`acme/vision@${BASE_SHA}:secmlops.yaml`, text);
}

/** A job's workspace: the actions no longer read the policy from it. */
async function workspace(opts: PolicyOptions): Promise<string> {
  await basePolicy(opts);
  return mkdtemp(join(fx.dir, 'ws-'));
}

interface ActionRun {
  code: number;
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
}

async function runAction(action: 'start' | 'gate' | 'approve', eventName: string, payload: Json, ws: string, inputs: Record<string, string> = {}): Promise<ActionRun> {
  const dir = await mkdtemp(join(tmpdir(), 'action-'));
  const files = { event: join(dir, 'event.json'), output: join(dir, 'output'), summary: join(dir, 'summary') };
  await writeFile(files.event, JSON.stringify(payload));
  await writeFile(files.output, '');
  await writeFile(files.summary, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_EVENT_NAME: eventName,
    GITHUB_EVENT_PATH: files.event,
    GITHUB_WORKSPACE: ws,
    GITHUB_API_URL: gh.url,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    'INPUT_TEMPORAL-ADDRESS': testAddress(),
    'INPUT_GITHUB-TOKEN': JOB_TOKEN,
    ACTIONS_ID_TOKEN_REQUEST_URL: gh.oidc.requestUrl,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: gh.oidc.requestToken,
    'INPUT_UI-URL': 'http://localhost:8233',
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
  const r = await promisify(execFile)(process.execPath, [`actions/${action}/dist/index.cjs`], { env }).then(
    (o) => ({ code: 0, stdout: o.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
  );
  const outputs: Record<string, string> = {};
  for (const m of (await readFile(files.output, 'utf8')).matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1]] = m[3];
  return { ...r, outputs, summary: await readFile(files.summary, 'utf8') };
}

/** A comment as GitHub stores it (the worker reads it back by ID) and the webhook payload announcing it. */
const comment = async (pr: number, login: string, body: string, edit: (e: Json) => void = () => {}, stored: { association?: string; type?: string; updatedAt?: string; createdAt?: string } = {}) => {
  const c = gh.addComment({ repo: 'acme/vision', issue: pr, login, body, ...stored });
  return event('issue_comment.created', pr, (e) => {
    const ec = e.comment as Json;
    Object.assign(ec, { body, id: c.id, created_at: c.created_at, updated_at: c.updated_at });
    Object.assign(ec.user as Json, { login });
    edit(e);
  });
};

const repliesTo = (pr: number) => gh.comments.filter((c) => c.issue === pr && !c.body.startsWith(REPORT_MARKER)).map((c) => c.body);
const reports = (pr: number) => gh.comments.filter((c) => c.issue === pr && c.body.startsWith(REPORT_MARKER));

const PLAN_THEN_DATA = '  - name: plan\n    approval: { roles: [R3] }\n  - name: data\n    approval: false';

describe('start', () => {
  test('a missing required input fails the step, naming it', async () => {
    const r = await runAction('start', 'pull_request', await event('pull_request.opened', 100), await workspace({}), { 'temporal-address': '' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('::error::Input required and not supplied: temporal-address');
  });

  test('a bad policy on the base commit fails the step, naming the file and the path', async () => {
    const ws = await workspace({ stages: '  - name: plan\n    approval: { roles: [R42] }' });
    const r = await runAction('start', 'pull_request', await event('pull_request.opened', 100), ws);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error::SecMLOps refused the start: .*acme\/vision@5b0e2d8c1f4a:secmlops\.yaml: stages\[0\]\.approval\.roles.*R42/);
  });

  test('starts once per commit, supersedes on a new push, and the worker reports the verdict in one PR comment', async () => {
    const ws = await workspace({ stages: PLAN_THEN_DATA, extra: 'gates:\n  - { id: test-size, metric: data.test.images, op: ">=", value: 10000 }' });
    const opened = await event('pull_request.opened', 101);
    const sha1 = ((opened.pull_request as Json).head as Json).sha as string;
    const first = await runAction('start', 'pull_request', opened, ws);
    expect(first.code).toBe(0);
    expect(first.outputs['workflow-id']).toBe('secmlops-acme-vision-pr101');
    expect(first.outputs['console-url']).toBe('http://localhost:8233/namespaces/default/workflows/secmlops-acme-vision-pr101');
    // The pending status comes from the worker's credentials, not the job's token.
    await waitUntil('the pending status', async () => gh.statuses.find((s) => s.sha === sha1 && s.state === 'pending'));
    expect(gh.statuses.filter((s) => s.sha === sha1)).toEqual([expect.objectContaining({ state: 'pending', context: 'secmlops', token: WORKER_TOKEN, target_url: first.outputs['console-url'] })]);
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
    await waitUntil('the superseded commit to be marked', async () => gh.statuses.find((s) => s.sha === sha1 && s.state === 'error'));
    expect(gh.statuses.find((s) => s.sha === sha1 && s.state === 'error')).toMatchObject({ token: WORKER_TOKEN, description: 'SecMLOps cancelled: the pipeline was cancelled' });
    expect(reports(101)).toHaveLength(1);

    // alice (R3) approves plan from a PR comment; data passes its gate and the pipeline passes.
    const approved = await runAction('approve', 'issue_comment', await comment(101, 'alice-sec', '/secmlops approve plan threat model reviewed'), ws);
    expect(approved.code).toBe(0);
    expect(approved.outputs.outcome).toBe('accepted');
    await waitUntil('the final status', async () => gh.statuses.find((s) => s.sha === sha2 && s.state === 'success'));
    const final = gh.statuses.find((s) => s.sha === sha2 && s.state === 'success')!;
    expect(final).toMatchObject({ token: WORKER_TOKEN, context: 'secmlops', description: 'SecMLOps pipeline passed', target_url: first.outputs['console-url'] });
    // One comment, updated in place: the cancelled run's report became the passed run's.
    await waitUntil('the report to show the verdict', async () => (reports(101)[0]?.body.includes('passed') ? true : undefined));
    const [report] = reports(101);
    expect(reports(101)).toHaveLength(1);
    expect(report.body).toContain('### SecMLOps ✅ passed');
    expect(report.body).toMatch(/\| test-size \| data \| `data\.test\.images` \| >= 10000 \| 10000 \| pass \|/);
    expect(report.body).toMatch(/\| plan \| approve \| alice \| R3 \| github \| [0-9T:.-]+Z \| threat model reviewed \|/);
    expect(report.body).toMatch(/\| data \| t10k-images-idx3-ubyte\.gz \| `sha256:[0-9a-f]{64}` \|/);
    // The run that reported to GitHub joins the replay corpus.
    await recordHistories(stack.client, 'github', ['secmlops-acme-vision-pr101']);
  }, 180_000);
});

/** What the start action does, done by the test: an OIDC token for `audience` from the job's issuer. */
async function oidcToken(audience: string): Promise<string> {
  const res = await fetch(`${gh.oidc.requestUrl}&audience=${encodeURIComponent(audience)}`, { headers: { authorization: `Bearer ${gh.oidc.requestToken}` } });
  return ((await res.json()) as { value: string }).value;
}

/** Starts a PR's pipeline the way the start action does, with whatever token and claimed subject a test gives. */
async function oidcStart(id: string, subject: ClaimedSubject, token?: string): Promise<PipelineResult | PipelineStatus> {
  const input: PipelineInput = { start: { kind: 'github-oidc', token: token ?? (await oidcToken(startAudience(id))), workflowId: id, subject, policyRef: 'secmlops.yaml' } };
  const { handle } = await startWithInput(stack.client, id, input, false);
  return handle.result();
}

describe('the worker report', () => {
  test('a report GitHub refuses leaves the verdict standing and says why in the status', async () => {
    await basePolicy({ stages: '  - name: data\n    approval: false' });
    // A commit GitHub does not know: the statuses endpoint answers 404, which no retry will change.
    await event('pull_request.opened', 105, (e) => Object.assign((e.pull_request as Json).head as Json, { sha: 'not-a-commit' }));
    const r = await oidcStart(uniqueId('report-refused'), { repo: 'acme/vision', pr: 105, headSha: 'not-a-commit', author: 'mia-ml' });
    expect(r.state).toBe('passed');
    expect(r.github).toEqual({ reported: false, error: expect.stringMatching(/^GitHub POST \/repos\/acme\/vision\/statuses\/not-a-commit answered 404: Not Found$/) as unknown });
  }, 60_000);
});

describe('GitHub starts are proven by the job’s OIDC token and confirmed through GitHub', () => {
  const claimed = (pr: number, headSha = '9f3c2a1b7d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a'): ClaimedSubject => ({ repo: 'acme/vision', pr, headSha, author: 'mia-ml' });
  const refused = async (id: string, subject: ClaimedSubject, reason: RegExp, token?: string) => {
    const r = await oidcStart(id, subject, token);
    expect(r.state).toBe('failed');
    expect(r.reason).toMatch(reason);
    // Nothing was reported to GitHub for a start that was not proven.
    expect(gh.statuses.filter((s) => s.sha === subject.headSha && s.token === WORKER_TOKEN && s.description.includes(id))).toEqual([]);
  };

  beforeAll(() => basePolicy({ stages: '  - name: data\n    approval: false' }));

  test('a token requested for another pipeline (wrong audience) is refused', async () => {
    await event('pull_request.opened', 110);
    await refused('secmlops-acme-vision-pr110', claimed(110), /OIDC token was refused: .*audience/, await oidcToken(startAudience('secmlops-acme-vision-pr999')));
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
    await refused('secmlops-acme-vision-pr113', claimed(113, 'c'.repeat(40)), /PR #113's head is 9f3c2a1b7d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a, not c{40}/);
  });

  test('a PR into a branch other than the policy branch is refused (its author may have written that branch’s policy)', async () => {
    await event('pull_request.opened', 118, (e) => Object.assign((e.pull_request as Json).base as Json, { ref: 'feature-x' }));
    await refused('secmlops-acme-vision-pr118', claimed(118), /PR #118 targets feature-x, but policies are read from main: only PRs into main are checked/);
  });

  test('a token for one PR cannot start another PR’s pipeline', async () => {
    await event('pull_request.opened', 114);
    await event('pull_request.opened', 115); // the token's ref now names PR 115
    await refused('secmlops-acme-vision-pr114', claimed(114), /the start claims PR #114, but the token was issued for PR #115/);
  });

  test('a start that brings its own policy, or no proof, is refused; the PR status is untouched', async () => {
    const legacy = await stack.client.workflow.start('secmlopsPipeline', { taskQueue: 'secmlops', workflowId: uniqueId('own-policy'), args: [claimed(116), await testPolicy(fx)] });
    expect(((await legacy.result()) as PipelineStatus).reason).toMatch(/a policy body from the client is refused/);
    const unsigned = await stack.client.workflow.start('secmlopsPipeline', {
      taskQueue: 'secmlops',
      workflowId: uniqueId('unsigned'),
      args: [{ start: { kind: 'cli', request: { v: 1, workflowId: 'x', subject: claimed(116), policyRef: 'secmlops.yaml', issuedAt: new Date().toISOString() }, signature: 'AAAA' } }],
    });
    expect(((await unsigned.result()) as PipelineStatus).reason).toMatch(/the start was refused: the start request was signed for pipeline x/);
  });

  test('a squatter who started the PR’s workflow ID first is replaced, not attached to', async () => {
    await basePolicy({ stages: '  - name: plan\n    approval: { roles: [R3] }' });
    const opened = await event('pull_request.opened', 117);
    const sha = ((opened.pull_request as Json).head as Json).sha as string;
    // The squatter writes the memo the old start action matched on, and a subject claiming to come from GitHub.
    const squat = await stack.client.workflow.start('secmlopsPipeline', {
      taskQueue: 'secmlops',
      workflowId: 'secmlops-acme-vision-pr117',
      args: [{ ...claimed(117, sha), source: 'github' }, await testPolicy(fx, { stages: '  - name: plan\n    approval: false' })],
      memo: { headSha: sha },
    });
    const r = await runAction('start', 'pull_request', opened, await mkdtemp(join(fx.dir, 'ws-')));
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('attached to');
    expect(r.outputs['run-id']).not.toBe(squat.firstExecutionRunId);
    const s = await stack.client.workflow.getHandle('secmlops-acme-vision-pr117').query<PipelineStatus>('status');
    expect(s.subject).toMatchObject({ repo: 'acme/vision', pr: 117, headSha: sha, author: 'mia-ml', source: 'github' });
    await stack.client.workflow.getHandle('secmlops-acme-vision-pr117').terminate('test done');
  }, 60_000);
});

describe('approve', () => {
  test('an approver is accepted; the author, a non-member, a bot, an edited comment and a malformed command are refused with the reason', async () => {
    const ws = await workspace({ stages: '  - name: plan\n    approval: { roles: [R3], quorum: 2 }' });
    const key = {};
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 102), ws)).code).toBe(0);
    const cases: [string, Json, RegExp][] = [
      ['the PR author', await comment(102, 'mia-ml', '/secmlops approve plan'), /the pipeline refused your approval: mia is the author of this change and cannot decide on it/],
      ['a non-member', await comment(102, 'alice-sec', '/secmlops approve plan', (e) => Object.assign(e.comment as Json, { author_association: 'NONE' })), /only the repository's owners, members and collaborators may decide; your association is NONE/],
      [
        'a bot',
        await comment(102, 'dependabot[bot]', '/secmlops approve plan', (e) => Object.assign((e.comment as Json).user as Json, { type: 'Bot' })),
        /comments by bots are not decisions/,
      ],
      ['an edited comment', await event('issue_comment.edited', 102), /edited comments are not decisions \(this one was edited\)/],
      ['a malformed command', await comment(102, 'alice-sec', '/secmlops aprove plan'), /I could not read that command; usage:/],
      ['a rejection without a reason', await comment(102, 'alice-sec', '/secmlops reject plan'), /a rejection needs a reason/],
      ['someone not in the policy', await comment(102, 'eve-x', '/secmlops approve plan'), /GitHub user eve-x is not a person in the policy/],
    ];
    for (const [name, payload, reason] of cases) {
      const before = gh.reactions.length;
      const r = await runAction('approve', 'issue_comment', payload, ws, key);
      expect({ name, code: r.code, outcome: r.outputs.outcome }).toEqual({ name, code: 0, outcome: 'refused' });
      expect(r.outputs.reason).toMatch(reason);
      expect(gh.reactions.slice(before)).toEqual([{ repo: 'acme/vision', comment: (payload.comment as Json).id, content: '-1' }]);
      expect(repliesTo(102).at(-1)).toMatch(reason);
    }
    // Nothing was decided; a comment that is not a command is ignored without a reply.
    const ignored = await runAction('approve', 'issue_comment', await comment(102, 'alice-sec', 'looks good to me'), ws, key);
    expect(ignored.outputs.outcome).toBe('ignored');
    const status = await stack.client.workflow.getHandle('secmlops-acme-vision-pr102').query<PipelineStatus>('status');
    expect(status.audit.filter((a) => a.kind === 'decision')).toEqual([]);

    const ok = await runAction('approve', 'issue_comment', await comment(102, 'alice-sec', '/secmlops approve plan fine by me'), ws, key);
    expect(ok.outputs.outcome).toBe('accepted');
    expect(ok.outputs.reason).toBe('your approval of plan was accepted; stage plan still needs more approvals to reach its quorum.');
    expect(repliesTo(102).at(-1)).toBe('@alice-sec your approval of plan was accepted; stage plan still needs more approvals to reach its quorum.');
    expect(gh.reactions.at(-1)?.content).toBe('+1');
    await stack.client.workflow.getHandle('secmlops-acme-vision-pr102').cancel();
  }, 180_000);
});

describe('PR-comment decisions are read and signed by a worker', () => {
  test('a comment from another PR, an edited one, one written before the stage began, and a forged event are refused', async () => {
    const ws = await workspace({ stages: '  - name: plan\n    approval: { roles: [R3] }' });
    // A comment alice wrote before this run existed (about an earlier commit, say).
    const early = gh.addComment({ repo: 'acme/vision', issue: 120, login: 'alice-sec', body: '/secmlops approve plan', createdAt: '2020-01-01T00:00:00Z' });
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 120), ws)).code).toBe(0);
    await waitUntil('plan to wait', async () => ((await stack.client.workflow.getHandle('secmlops-acme-vision-pr120').query<PipelineStatus>('status')).stages[0]?.state === 'waiting' ? true : undefined));
    const elsewhere = gh.addComment({ repo: 'acme/vision', issue: 121, login: 'alice-sec', body: '/secmlops approve plan' });
    const cases: [string, Json, RegExp][] = [
      // The event says PR 120, but the comment GitHub holds under that ID is on PR 121.
      ['a comment from another PR', await event('issue_comment.created', 120, (e) => Object.assign(e.comment as Json, { id: elsewhere.id, body: '/secmlops approve plan', user: { login: 'alice-sec', type: 'User' } })), /does not belong to acme\/vision#120/],
      ['an edited comment', await comment(120, 'alice-sec', '/secmlops approve plan', () => {}, { updatedAt: '2099-01-01T00:00:00Z' }), /was edited .*edited comments are not decisions/],
      ['a comment written before the stage began', await event('issue_comment.created', 120, (e) => Object.assign(e.comment as Json, { id: early.id, body: '/secmlops approve plan', user: { login: 'alice-sec', type: 'User' } })), /was written at 2020-01-01T00:00:00Z, before stage plan of this run began/],
      // The event claims an approval; GitHub's copy of the comment says something else.
      ['an event that misquotes the comment', await comment(120, 'alice-sec', 'nice work', (e) => Object.assign(e.comment as Json, { body: '/secmlops approve plan' })), /is not a SecMLOps decision/],
      ['a member whose association GitHub reports as NONE', await comment(120, 'alice-sec', '/secmlops approve plan', () => {}, { association: 'NONE' }), /association is NONE/],
    ];
    for (const [name, payload, reason] of cases) {
      const r = await runAction('approve', 'issue_comment', payload, ws);
      expect({ name, outcome: r.outputs.outcome }).toEqual({ name, outcome: 'refused' });
      expect(r.outputs.reason).toMatch(reason);
    }
    const s = await stack.client.workflow.getHandle('secmlops-acme-vision-pr120').query<PipelineStatus>('status');
    expect(s.audit.filter((a) => a.kind === 'decision')).toEqual([]);
    // A genuine comment is accepted, signed by the github channel key the worker holds.
    const ok = await runAction('approve', 'issue_comment', await comment(120, 'alice-sec', '/secmlops approve plan all good'), ws);
    expect(ok.outputs.outcome).toBe('accepted');
    const after = await stack.client.workflow.getHandle('secmlops-acme-vision-pr120').query<PipelineStatus>('status');
    expect(after.audit.find((a) => a.kind === 'decision')).toMatchObject({ person: 'alice', channel: 'github', comment: 'all good', subjectDigest: after.subjectDigest });
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
    const completed = history.events!.find((e) => e.activityTaskCompletedEventAttributes)!.activityTaskCompletedEventAttributes!;
    const [resolved] = (await decodePayloads(completed.result!.payloads)) as { evidence: Evidence<'start'> }[];
    const start = resolved.evidence;
    const native = await NativeConnection.connect({ address: testAddress() });
    const rogue = await Worker.create({ connection: native, taskQueue: 'rogue', workflowsPath: resolve('test/helpers/rogue-workflows.ts') });
    try {
      await rogue.runUntil(async () => {
        const run = <T,>(fn: string, arg: T) => stack.client.workflow.execute(fn, { taskQueue: 'rogue', workflowId: uniqueId('rogue'), args: [arg] }) as Promise<string>;
        const aliceComment = gh.addComment({ repo: 'acme/vision', issue: 130, login: 'alice-sec', body: '/secmlops approve plan' });
        // A forged start evidence that maps the rogue's login to alice: its signature no longer verifies.
        const forged = JSON.parse(JSON.stringify(start)) as Evidence<'start'>;
        forged.body.payload.policy.people.find((p) => p.id === 'alice')!.github = 'mallory';
        expect(await run('rogueCommentDecision', { commentId: aliceComment.id, stage: 'plan', notBefore: 0, start: forged })).toMatch(/^no valid start evidence: the start evidence's signature does not verify/);
        // Genuine evidence, asked by a workflow that is not this pipeline's plan stage.
        expect(await run('rogueCommentDecision', { commentId: aliceComment.id, stage: 'plan', notBefore: 0, start })).toMatch(/^only secmlops-acme-vision-pr130\/plan may ask for its decisions \(asked by test-rogue-/);
        // A green status for the PR without a dossier that checks out: refused, nothing set.
        const statusesBefore = gh.statuses.length;
        const status = { workflowId: 'secmlops-acme-vision-pr130', policyName: 'test', subject: start.body.payload.subject, state: 'passed', stages: [], audit: [] };
        expect(await run('rogueReport', { status, verdict: 'passed', runId: 'x', start })).toBe('not reporting a pass to GitHub: no dossier');
        const hollow = { pipelineId: 'secmlops-acme-vision-pr130', start, stages: [], audit: [] };
        expect(await run('rogueReport', { status, verdict: 'passed', runId: 'x', start, dossier: hollow })).toMatch(/^not reporting a pass to GitHub: .*the audit trail is empty/);
        expect(gh.statuses.slice(statusesBefore)).toEqual([]);
      });
    } finally {
      await native.close();
      await pipeline.terminate('test done');
    }
  }, 120_000);
});

describe('gate', () => {
  test('fails the step on a failed gate, naming it, and passes on a pass', async () => {
    const gate = (value: number) => `gates:\n  - { id: enough-images, metric: data.test.images, op: ">=", value: ${value} }`;
    // Each PR's base commit holds its own policy: the worker reads it when that PR's pipeline starts.
    const failing = await workspace({ stages: '  - name: data\n    approval: false', extra: gate(20000) });
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 103), failing)).code).toBe(0);
    const passing = await workspace({ stages: '  - name: data\n    approval: false', extra: gate(10000) });
    expect((await runAction('start', 'pull_request', await event('pull_request.opened', 104), passing)).code).toBe(0);
    const failed = await runAction('gate', 'pull_request', await event('pull_request.opened', 103), failing, { timeout: '2m' });
    expect(failed.code).toBe(1);
    expect(failed.outputs.verdict).toBe('failed');
    expect(failed.outputs['failed-gates']).toBe('enough-images');
    expect(failed.stdout).toMatch(/::error::SecMLOps failed: stage data failed: .*; failed gates: enough-images/);
    expect(failed.summary).toContain('| enough-images | data | `data.test.images` | >= 20000 | 10000 | **fail** |');
    const passed = await runAction('gate', 'pull_request', await event('pull_request.opened', 104), passing, { timeout: '2m' });
    expect(passed.code).toBe(0);
    expect(passed.outputs.verdict).toBe('passed');
    expect(passed.summary).toContain('### SecMLOps ✅ passed');
  }, 180_000);
});

describe('GitHub App credentials', () => {
  test('an installation token is fetched with an RS256 JWT; a wrong key is refused', async () => {
    const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const app = pair();
    const stranger = pair();
    const server = await startGitHubStandIn({ tokens: [], app: { id: '123456', installation: '7890', publicKeyPem: app.publicKey } });
    const dir = await mkdtemp(join(tmpdir(), 'app-'));
    await writeFile(join(dir, 'app.pem'), app.privateKey);
    await writeFile(join(dir, 'stranger.pem'), stranger.privateKey);
    try {
      expect(await appCredentials('123456', join(dir, 'app.pem'), '7890', server.url).token()).toMatch(/^ghs_installation\d+$/);
      await expect(appCredentials('123456', join(dir, 'stranger.pem'), '7890', server.url).token()).rejects.toThrow('GitHub refused an installation token for App 123456, installation 7890: 401');
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
        expect({ file: `actions/${action}/dist/${f}`, current: same }).toEqual({ file: `actions/${action}/dist/${f}`, current: true });
      }
    }
  }, 60_000);
});

describe('the example workflow for users', () => {
  test('uses only inputs the actions declare, and gives each job the permissions it needs', async () => {
    const { parse } = await import('yaml');
    const wf = parse(await readFile('examples/github/secmlops.yml', 'utf8')) as { jobs: Record<string, { permissions: Record<string, string>; steps: { uses?: string; with?: Record<string, string> }[] }> };
    for (const job of Object.values(wf.jobs)) {
      for (const step of job.steps.filter((s) => s.uses?.includes('/actions/'))) {
        const action = /\/actions\/(\w+)@/.exec(step.uses!)![1];
        const declared = Object.keys((parse(await readFile(`actions/${action}/action.yml`, 'utf8')) as { inputs: Record<string, unknown> }).inputs);
        for (const input of Object.keys(step.with ?? {})) expect({ action, input, declared: declared.includes(input) }).toEqual({ action, input, declared: true });
      }
    }
    expect(wf.jobs.start.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    expect(wf.jobs.approve.permissions).toMatchObject({ issues: 'write', 'pull-requests': 'write' });
  });
});
