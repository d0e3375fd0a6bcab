// The GitHub Actions as GitHub runs them (node dist/index.cjs with INPUT_* and a webhook payload), against the real dev
// server and a local stand-in for GitHub's REST API and its Actions OIDC issuer: what the actions' test files share.
import { afterAll, beforeAll } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startWithInput } from '../../client/start.js';
import { tokenCredentials } from '../../github/credentials.js';
import { REPORT_MARKER } from '../../github/report.js';
import { startAudience, type ClaimedSubject, type PipelineInput } from '../../policy/index.js';
import type { PipelineResult, PipelineStatus } from '../../workflows/messages.js';
import { makeFixture, testPolicyText, type Fixture, type PolicyOptions } from './fixture.js';
import { startGitHubStandIn, type GitHubStandIn } from './github-api.js';
import { startStack, testAddress, type Stack } from './temporal.js';

export const JOB_TOKEN = 'ghs_job0000000000000000000000000000000';
export const WORKER_TOKEN = 'github_pat_worker000000000000000000';
const FIXTURES = 'test/fixtures/github';

let fx: Fixture;
let stack: Stack;
let gh: GitHubStandIn;

/** The fixture, the worker stack and the GitHub stand-in the harness started (valid once its beforeAll ran). */
export function harness(): { fx: Fixture; stack: Stack; gh: GitHubStandIn } {
  return { fx, stack, gh };
}

/** Starts the worker stack (trusting the stand-in's OIDC issuer for acme/vision) and the GitHub stand-in. */
export function useActionsHarness(): void {
  beforeAll(async () => {
    fx = await makeFixture();
    gh = await startGitHubStandIn({ tokens: [JOB_TOKEN, WORKER_TOKEN] });
    // The worker holds its own GitHub credentials and trusts the stand-in's OIDC issuer for acme/vision only; the
    // actions only ever get the job's token and an OIDC token.
    const trust = {
      ...fx.trust,
      oidc: {
        issuer: gh.oidc.issuer,
        jwksUrl: gh.oidc.jwksUrl,
        repositories: ['acme/vision'],
        policyPath: 'secmlops.yaml',
      },
    };
    gh.branches.set('acme/vision:main', BASE_SHA);
    stack = await startStack(fx, testAddress(), tokenCredentials(WORKER_TOKEN, gh.url), undefined, trust);
  });
  afterAll(async () => {
    await stack?.stop();
    await gh?.close();
  });
}

export type Json = Record<string, unknown>;

/**
 * A webhook payload. For pull_request events GitHub's side is set to match, as a real PR would be: the PR (head,
 * base, author) behind the API, and the claims of the OIDC token the job will get (refs/pull/N/merge).
 */
export async function event(name: string, pr: number, edit: (e: Json) => void = () => {}): Promise<Json> {
  const e = JSON.parse(await readFile(join(FIXTURES, `${name}.json`), 'utf8')) as Json;
  if (e.pull_request) {
    e.number = pr;
    (e.pull_request as Json).number = pr;
  }
  if (e.issue) Object.assign(e.issue as Json, { number: pr });
  edit(e);
  const p = e.pull_request as
    | {
        number: number;
        title?: string;
        user: { login: string };
        head: { sha: string };
        base: { sha: string; ref: string };
      }
    | undefined;
  if (p) {
    gh.pulls.set(`acme/vision#${pr}`, {
      number: pr,
      title: p.title,
      user: { login: p.user.login },
      head: { sha: p.head.sha },
      base: { sha: p.base.sha, ref: p.base.ref },
    });
    gh.oidc.claims = {
      repository: 'acme/vision',
      ref: `refs/pull/${pr}/merge`,
      sha: 'e'.repeat(40),
      event_name: 'pull_request',
    };
  }
  return e;
}

export const BASE_SHA = '5b0e2d8c1f4a7e93d6b2c0a8f1e4d7c9b3a6e2f1';

/** The policy on the PR's base commit, where the workers read it (keys inline: no files to fetch beside it). */
export async function basePolicy(opts: PolicyOptions): Promise<void> {
  let text = await testPolicyText(fx, { githubChannel: true, ...opts });
  for (const m of text.matchAll(/\{ publicKeyFile: (keys\/\w+\.pub) \}/g))
    text = text.replace(m[0], `{ publicKey: ${(await readFile(join(fx.dir, m[1]), 'utf8')).trim()} }`);
  gh.files.set(`acme/vision@${BASE_SHA}:secmlops.yaml`, text);
}

/** A job's workspace: the actions no longer read the policy from it. */
export async function workspace(opts: PolicyOptions): Promise<string> {
  await basePolicy(opts);
  return mkdtemp(join(fx.dir, 'ws-'));
}

export interface ActionRun {
  code: number;
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
}

export async function runAction(
  action: 'start' | 'gate' | 'approve',
  eventName: string,
  payload: Json,
  ws: string,
  inputs: Record<string, string> = {},
): Promise<ActionRun> {
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
  for (const m of (await readFile(files.output, 'utf8')).matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm))
    outputs[m[1]] = m[3];
  return { ...r, outputs, summary: await readFile(files.summary, 'utf8') };
}

/** A comment as GitHub stores it (the worker reads it back by ID) and the webhook payload announcing it. */
export const comment = async (
  pr: number,
  login: string,
  body: string,
  edit: (e: Json) => void = () => {},
  stored: { association?: string; type?: string; updatedAt?: string; createdAt?: string } = {},
) => {
  const c = gh.addComment({ repo: 'acme/vision', issue: pr, login, body, ...stored });
  return event('issue_comment.created', pr, (e) => {
    const ec = e.comment as Json;
    Object.assign(ec, { body, id: c.id, created_at: c.created_at, updated_at: c.updated_at });
    Object.assign(ec.user as Json, { login });
    edit(e);
  });
};

export const repliesTo = (pr: number) =>
  gh.comments.filter((c) => c.issue === pr && !c.body.startsWith(REPORT_MARKER)).map((c) => c.body);
export const reports = (pr: number) => gh.comments.filter((c) => c.issue === pr && c.body.startsWith(REPORT_MARKER));

export async function oidcToken(audience: string): Promise<string> {
  const res = await fetch(`${gh.oidc.requestUrl}&audience=${encodeURIComponent(audience)}`, {
    headers: { authorization: `Bearer ${gh.oidc.requestToken}` },
  });
  return ((await res.json()) as { value: string }).value;
}

/** Starts a PR's pipeline the way the start action does, with whatever token and claimed subject a test gives. */
export async function oidcStart(
  id: string,
  subject: ClaimedSubject,
  token?: string,
): Promise<PipelineResult | PipelineStatus> {
  const input: PipelineInput = {
    start: {
      kind: 'github-oidc',
      token: token ?? (await oidcToken(startAudience(id))),
      workflowId: id,
      subject,
      policyRef: 'secmlops.yaml',
    },
  };
  const { handle } = await startWithInput(stack.client, id, input, false);
  return handle.result();
}
