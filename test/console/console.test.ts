// The approvals console in Debian's Chromium (playwright-core) and its Slack endpoint, against the real dev server.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { generateKeyPairSync } from 'node:crypto';
import { loadPrivateKey, loadPublicKey } from '../../activities/keys.js';
import { createConsole } from '../../console/server.js';
import { pipelinePage } from '../../console/pages.js';
import { slackSignature } from '../../console/slack.js';
import { issueToken, verifyToken } from '../../console/tokens.js';
import { rawPublicKey } from '../../activities/keys.js';
import type { PipelineStatus } from '../../workflows/messages.js';
import { makeFixture, testPolicy, type Fixture } from '../helpers/fixture.js';
import { startPipeline, startStack, status, uniqueId, waitForStage, type Stack } from '../helpers/temporal.js';
import { openOnceStore } from '../../client/once-store.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/processes.js';

const CHROMIUM = process.env.SECMLOPS_CHROMIUM ?? '/usr/bin/chromium';
const SECRET = 'slack-signing-secret-for-tests';

let fx: Fixture;
let stack: Stack;
let app: FastifyInstance;
let url: string;
let browser: Browser;
let tokenKey: Awaited<ReturnType<typeof loadPrivateKey>>;

/** Stands in for Slack's Web API: chat.postMessage, as @slack/web-api calls it. */
const posted: {
  method: string;
  channel: string;
  text: string;
  ts?: string;
  blocks: { type: string; elements?: { action_id: string; value: string }[] }[];
}[] = [];
let slackApi: Server;
let slackUrl: string;
let postgres: Postgres;

beforeAll(async () => {
  postgres = await startPostgres();
  fx = await makeFixture();
  slackApi = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const method = (req.url ?? '').replace('/api/', '');
      const ok =
        ['chat.postMessage', 'chat.update'].includes(method) && req.headers.authorization === 'Bearer xoxb-test-token';
      if (ok) {
        const form = new URLSearchParams(raw);
        posted.push({
          method,
          channel: form.get('channel')!,
          text: form.get('text')!,
          ts: form.get('ts') ?? undefined,
          blocks: JSON.parse(form.get('blocks') ?? '[]') as (typeof posted)[number]['blocks'],
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          ok ? { ok: true, channel: 'C0SECMLOPS', ts: '1700000000.000100' } : { ok: false, error: 'invalid_auth' },
        ),
      );
    });
  });
  await new Promise<void>((r) => slackApi.listen(0, '127.0.0.1', r));
  slackUrl = `http://127.0.0.1:${(slackApi.address() as AddressInfo).port}/api/`;
  stack = await startStack(fx, undefined, undefined, { token: 'xoxb-test-token', apiUrl: slackUrl });
  tokenKey = await loadPrivateKey(fx.key('token'));
  app = createConsole({
    connect: async () => stack.client,
    tokenPublicKey: await loadPublicKey(`${fx.keys}/token.pub`),
    consoleKey: await loadPrivateKey(fx.key('console')),
    slack: { signingSecret: SECRET, key: await loadPrivateKey(fx.key('slack')) },
    state: openOnceStore(join(fx.dir, 'console-state.sqlite'), 'TEST_STATE'),
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await new Promise<void>((r) => (slackApi ? slackApi.close(() => r()) : r()));
  await browser?.close();
  await app?.close();
  await stack?.stop();
  await postgres?.stop();
});

/** A pipeline whose plan waits for R3 (alice, bea, mia), then data; the author is mia. */
async function waitingPipeline() {
  // The fixture pins cli and slack; the console channel is pinned here.
  const policy = await testPolicy(fx, {
    stages: '  - name: plan\n    approval: { roles: [R3] }\n  - name: data\n    approval: false',
    consoleChannel: true,
  });
  const id = uniqueId('console');
  const handle = await startPipeline(stack.client, policy, id);
  await waitForStage(handle, 'plan', ['waiting']);
  return { id, handle };
}

async function signIn(person: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  expect(page.url()).toBe(`${url}/signin`);
  await page.fill('#token', issueToken(person, 3600_000, tokenKey));
  await page.click('button[type=submit]');
  return { context, page };
}

describe('console tokens', () => {
  test('expired, tampered and wrong-key tokens are refused', async () => {
    const pub = await loadPublicKey(`${fx.keys}/token.pub`);
    const good = issueToken('alice', 60_000, tokenKey);
    expect(verifyToken(good, pub)).toMatchObject({ person: 'alice' });
    expect(() => verifyToken(issueToken('alice', 1000, tokenKey, Date.now() - 10_000), pub)).toThrow(
      /^the token expired at /,
    );
    const [prefix, payload, sig] = good.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), person: 'omar' }),
    ).toString('base64url');
    expect(() => verifyToken(`${prefix}.${forged}.${sig}`, pub)).toThrow(
      'the token’s signature is not the operator key’s (tampered, or issued with another key)',
    );
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(() => verifyToken(issueToken('alice', 60_000, other), pub)).toThrow(
      'the token’s signature is not the operator key’s',
    );
    expect(() => verifyToken(issueToken('alice', 60_000, tokenKey), rawPublicKey(other))).toThrow(
      'the token’s signature is not the operator key’s',
    );
    expect(() => verifyToken('hello', pub)).toThrow('not a SecMLOps console token');
  });
});

describe('console in a browser', () => {
  test('sign in, see the pending approval, approve it, and watch the pipeline advance', async () => {
    const { id, handle } = await waitingPipeline();
    const { context, page } = await signIn('alice');
    expect(page.url()).toBe(`${url}/`);
    const link = page.locator(`a[href="/pipelines/${id}"]`);
    await expect(link.count()).resolves.toBe(1);
    await expect(page.locator('tr', { has: link }).innerText()).resolves.toContain('plan');
    await link.click();
    await page.fill('section[data-stage=plan] textarea[name=comment]', 'reviewed in the console');
    await page.click('section[data-stage=plan] button.approve');
    await expect(page.locator('#flash').innerText()).resolves.toBe(
      'Your approval was accepted; stage plan is approved.',
    );
    if (process.env.SECMLOPS_SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SECMLOPS_SCREENSHOTS}/console-pipeline.png`, fullPage: true });
    await handle.result();
    const s = await status(handle);
    expect(s.stages.map((x) => x.state)).toEqual(['passed', 'passed']);
    expect(s.audit.find((a) => a.kind === 'decision')).toMatchObject({
      person: 'alice',
      channel: 'console',
      comment: 'reviewed in the console',
      roles: ['R3'],
    });
    await page.reload();
    await expect(page.locator('#state').innerText()).resolves.toBe('passed');
    await expect(page.locator('#audit').innerText()).resolves.toContain('reviewed in the console');
    // Sign-out ends the session.
    await page.click('header button');
    expect(page.url()).toBe(`${url}/signin`);
    await page.goto(`${url}/`);
    expect(page.url()).toBe(`${url}/signin`);
    await context.close();
  }, 120_000);

  test('a person without the role sees no button, and forged or cross-session posts are refused', async () => {
    const { id, handle } = await waitingPipeline();
    const dana = await signIn('dana');
    await dana.page.goto(`${url}/`);
    await expect(dana.page.locator(`a[href="/pipelines/${id}"]`).count()).resolves.toBe(0);
    await dana.page.goto(`${url}/pipelines/${id}`);
    await expect(dana.page.locator('section[data-stage=plan]').innerText()).resolves.toContain('waiting');
    await expect(dana.page.locator('button.approve').count()).resolves.toBe(0);
    const alice = await signIn('alice');
    await alice.page.goto(`${url}/pipelines/${id}`);
    if (process.env.SECMLOPS_SCREENSHOTS)
      await alice.page.screenshot({ path: `${process.env.SECMLOPS_SCREENSHOTS}/console-waiting.png`, fullPage: true });
    const aliceCsrf = await alice.page.locator('section[data-stage=plan] input[name=csrf]').getAttribute('value');
    const post = (ctx: typeof alice.context, form: Record<string, string>) =>
      ctx.request.post(`${url}/pipelines/${id}/stages/plan/decision`, { form, maxRedirects: 0 });
    // No CSRF token, a made-up one, and alice's token replayed from dana's session: all refused, nothing sent.
    expect((await post(alice.context, { decision: 'approve' })).status()).toBe(403);
    expect((await post(alice.context, { decision: 'approve', csrf: 'x'.repeat(43) })).status()).toBe(403);
    expect((await post(dana.context, { decision: 'approve', csrf: aliceCsrf! })).status()).toBe(403);
    // dana's own valid post reaches the workflow, whose validator refuses her role.
    const danaCsrf = await dana.page.locator('input[name=csrf]').first().getAttribute('value');
    const refused = await post(dana.context, {
      decision: 'approve',
      csrf: danaCsrf!,
      subject: (await status(handle)).subjectDigest!,
    });
    expect(refused.status()).toBe(409);
    expect(await refused.text()).toContain('Refused: dana holds none of the roles this stage needs');
    expect((await status(handle)).stages[0].state).toBe('waiting');
    expect((await status(handle)).audit.filter((a) => a.kind === 'decision')).toEqual([]);
    await dana.context.close();
    await alice.context.close();
    await handle.cancel();
  }, 120_000);
});

describe('look-alike pipelines', () => {
  test('a secmlopsPipeline on a task queue our workers do not poll is neither shown nor signed for', async () => {
    // A namespace user starts a look-alike on a queue they poll themselves: its queries could answer anything.
    const id = uniqueId('lookalike');
    const fake = await stack.client.workflow.start('secmlopsPipeline', {
      taskQueue: 'not-ours',
      workflowId: id,
      args: [{}],
    });
    try {
      const alice = await signIn('alice');
      const page = await alice.context.request.get(`${url}/pipelines/${id}`);
      expect(page.status()).toBe(404);
      expect(await page.text()).toContain(
        `${id} is a secmlopsPipeline on task queue not-ours, not a SecMLOps pipeline run by its workers`,
      );
      const csrf = await alice.page.locator('header input[name=csrf]').getAttribute('value');
      const post = await alice.context.request.post(`${url}/pipelines/${id}/stages/plan/decision`, {
        form: { decision: 'approve', csrf: csrf!, subject: 'f'.repeat(64) },
        maxRedirects: 0,
      });
      // Refused before anything is signed; the page cannot show the look-alike either.
      expect(post.status()).toBe(404);
      expect(await post.text()).toContain('not a SecMLOps pipeline run by its workers');
      await alice.context.close();
    } finally {
      await fake.terminate('test done');
    }
  }, 60_000);
});

describe.each(['sqlite', 'postgres'] as const)('console state in %s', (kind) => {
  test('two consoles agree on a sign-out and a seen Slack request, and both stay refused after a restart', async () => {
    const spec = kind === 'sqlite' ? join(fx.dir, 'shared-state') + '/' : postgres.url;
    const open = async () => {
      const c = createConsole({
        connect: async () => stack.client,
        tokenPublicKey: await loadPublicKey(`${fx.keys}/token.pub`),
        slack: { signingSecret: SECRET, key: await loadPrivateKey(fx.key('slack')) },
        state: openOnceStore(spec, 'SECMLOPS_CONSOLE_STATE'),
      });
      return { c, base: await c.listen({ port: 0, host: '127.0.0.1' }) };
    };
    const token = issueToken(`alice`, 3600_000, tokenKey);
    const cookie = `secmlops_session=${token}`;
    const first = await open();
    const second = await open();
    const home = await fetch(`${first.base}/`, { headers: { cookie }, redirect: 'manual' });
    expect(home.status).toBe(200);
    // Signed in on the second console as well, before the sign-out.
    expect((await fetch(`${second.base}/`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await home.text())![1];
    await fetch(`${first.base}/signout`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${encodeURIComponent(csrf)}`,
      redirect: 'manual',
    });
    // A Slack request for an unknown pipeline: accepted once (answered 200), which records its signature.
    const raw = `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: 'U0ALICE01' }, actions: [{ action_id: 'approve', value: JSON.stringify({ workflowId: `nope-${kind}`, stage: 'plan' }) }] }))}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': slackSignature(SECRET, ts, raw),
    };
    expect((await fetch(`${first.base}/slack/interactivity`, { method: 'POST', headers, body: raw })).status).toBe(200);

    const refused = async (base: string) => {
      const again = await fetch(`${base}/`, { headers: { cookie }, redirect: 'manual' });
      expect(again.status).toBe(303);
      expect(again.headers.get('location')).toBe('/signin');
      const signin = await fetch(`${base}/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${encodeURIComponent(token)}`,
        redirect: 'manual',
      });
      expect(signin.status).toBe(401);
      expect(await signin.text()).toContain('That token was refused: it was signed out.');
      const replay = await fetch(`${base}/slack/interactivity`, { method: 'POST', headers, body: raw });
      expect(replay.status).toBe(401);
      expect(await replay.json()).toEqual({ error: 'this signed request was already received (a replay?)' });
    };
    // The other console, running at the same time, refuses both.
    await refused(second.base);
    await first.c.close();
    await second.c.close();
    // And a console started afterwards (a restart) still does.
    const third = await open();
    try {
      await refused(third.base);
    } finally {
      await third.c.close();
    }
  });
});

describe('console decisions are bound to the change shown', () => {
  test('a decision signed for another change than the pipeline runs for is refused', async () => {
    const { id, handle } = await waitingPipeline();
    const alice = await signIn('alice');
    await alice.page.goto(`${url}/pipelines/${id}`);
    const shown = await alice.page.locator('section[data-stage=plan] input[name=subject]').getAttribute('value');
    expect(shown).toBe((await status(handle)).subjectDigest);
    const csrf = await alice.page.locator('section[data-stage=plan] input[name=csrf]').getAttribute('value');
    // As if the page had been rendered for an earlier commit: the workflow refuses the signature's subject.
    const stale = await alice.context.request.post(`${url}/pipelines/${id}/stages/plan/decision`, {
      form: { decision: 'approve', csrf: csrf!, subject: 'f'.repeat(64) },
      maxRedirects: 0,
    });
    expect(stale.status()).toBe(409);
    expect(await stale.text()).toContain('the decision was signed for another change');
    expect((await status(handle)).stages[0].state).toBe('waiting');
    await alice.context.close();
    await handle.cancel();
  }, 60_000);
});

describe('pipeline page', () => {
  test('charts accuracy versus epsilon once the evaluate stage has run, and escapes what it shows', () => {
    const evaluate = {
      name: 'evaluate',
      workflowId: 'p/evaluate',
      state: 'waiting',
      revision: 3,
      tasks: [],
      blockers: [],
      findings: [],
      metrics: {},
      gates: [],
      artifacts: {},
      evaluation: {
        images: 1000,
        cleanAccuracy: 0.82,
        withoutGradient: [],
        attacks: [
          {
            id: 'pgd20',
            attack: 'pgd',
            eps: 0.1,
            robustAccuracy: 0.68,
            successRate: 0.17,
            medianLinf: 0.1,
            seconds: 5,
          },
        ],
      },
    };
    const s = {
      workflowId: 'p',
      policyName: 'demo',
      subject: { repo: 'acme/<script>', headSha: 'abc', author: 'mia-ml' },
      state: 'running',
      stages: [evaluate],
      audit: [],
    } as unknown as PipelineStatus;
    const html = pipelinePage(s, { person: 'alice', roles: ['R3'], csrf: 'c' });
    expect(html).toContain('<svg role="img" aria-label="accuracy versus epsilon"');
    expect(html).toContain('<text x="384" y="36" text-anchor="end" fill="#0969da">pgd20</text>');
    expect(html).toContain('acme/&lt;script&gt;');
    expect(html).not.toContain('acme/<script>');
  });
});

describe('console without Temporal', () => {
  test('serves pages that say what is missing, and still refuses unsigned Slack requests', async () => {
    const state = openOnceStore(join(fx.dir, 'down-state.sqlite'), 'TEST_STATE');
    const down = createConsole({
      connect: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')),
      tokenPublicKey: await loadPublicKey(`${fx.keys}/token.pub`),
      slack: { signingSecret: SECRET },
      state,
    });
    const base = await down.listen({ port: 0, host: '127.0.0.1' });
    try {
      const cookie = `secmlops_session=${issueToken('alice', 60_000, tokenKey)}`;
      const home = await fetch(`${base}/`, { headers: { cookie } });
      expect(home.status).toBe(200);
      expect(await home.text()).toContain(
        'Temporal is unreachable, so pending approvals cannot be listed: connect ECONNREFUSED',
      );
      const slack = await fetch(`${base}/slack/interactivity`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'payload=%7B%7D',
      });
      expect(slack.status).toBe(401);
      // No signing secret configured: every Slack request fails the check.
      const bare = createConsole({ connect: async () => Promise.reject(new Error('down')), state });
      const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
      const ts = String(Math.floor(Date.now() / 1000));
      const r = await fetch(`${bareUrl}/slack/interactivity`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-slack-request-timestamp': ts,
          'x-slack-signature': slackSignature(SECRET, ts, 'a=1'),
        },
        body: 'a=1',
      });
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ error: 'SLACK_SIGNING_SECRET is not set on the console' });
      await bare.close();
      // Request bodies have a limit.
      const big = await fetch(`${base}/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${'x'.repeat(200 * 1024)}`,
      });
      expect(big.status).toBe(413);
    } finally {
      await down.close();
    }
  });
});

describe('Slack interactivity', () => {
  let hook: Server;
  let hookUrl: string;
  const received: { text: string; replace_original?: boolean }[] = [];
  beforeAll(async () => {
    // Stands in for Slack's response_url, which receives the message update or the refusal.
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { text: string });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/actions/T0/1/abc`;
  });
  afterAll(() => new Promise<void>((r) => hook.close(() => r())));

  const digests = new Map<string, string>();
  const body = (user: string, workflowId: string, action = 'approve') =>
    `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', user: { id: user }, actions: [{ action_id: action, value: JSON.stringify({ workflowId, stage: 'plan', subjectDigest: digests.get(workflowId) }) }], response_url: hookUrl, channel: { id: 'C0' }, container: { message_ts: '1.2' } }))}`;
  const send = (raw: string, headers: Record<string, string>) =>
    fetch(`${url}/slack/interactivity`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: raw,
    });
  const signed = (raw: string, ts = Math.floor(Date.now() / 1000)) => ({
    'x-slack-request-timestamp': String(ts),
    'x-slack-signature': slackSignature(SECRET, String(ts), raw),
  });

  test('forged, stale, replayed and unsigned requests are refused with no Update sent', async () => {
    const { id, handle } = await waitingPipeline();
    digests.set(id, (await status(handle)).subjectDigest!);
    const raw = body('U0ALICE01', id);
    const old = Math.floor(Date.now() / 1000) - 600;
    const cases: [string, Record<string, string>, string][] = [
      [
        'a wrong signature',
        {
          ...signed(raw),
          'x-slack-signature': slackSignature('another-secret', signed(raw)['x-slack-request-timestamp'], raw),
        },
        raw,
      ],
      ['a missing header', { 'x-slack-request-timestamp': signed(raw)['x-slack-request-timestamp'] }, raw],
      ['a stale timestamp', signed(raw, old), raw],
      [
        'a replayed body with a new timestamp',
        { ...signed(raw, old), 'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)) },
        raw,
      ],
      ['a signature over a different body', signed(body('U0ALICE01', id, 'reject')), raw],
    ];
    for (const [name, headers, b] of cases) {
      const r = await send(b, headers);
      expect({ name, status: r.status }).toEqual({ name, status: 401 });
    }
    await new Promise((r) => setTimeout(r, 500));
    expect((await status(handle)).stages[0].state).toBe('waiting');
    expect(received).toEqual([]);
    await handle.cancel();
  });

  test('a signed press is answered at once, sends the Update, and updates the message; an unknown user and a replay are refused', async () => {
    const { id, handle } = await waitingPipeline();
    digests.set(id, (await status(handle)).subjectDigest!);
    const unknown = body('U0NOBODY0', id);
    expect((await send(unknown, signed(unknown))).status).toBe(200);
    await waitUntil('the refusal in Slack', async () => received.find((m) => m.text.includes('U0NOBODY0')));
    expect(received.find((m) => m.text.includes('U0NOBODY0'))).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: 'Refused: Slack user U0NOBODY0 is not a person in policy test.',
    });
    const raw = body('U0ALICE01', id);
    const headers = signed(raw);
    const started = Date.now();
    const r = await send(raw, headers);
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    await waitUntil('the message update', async () => received.find((m) => m.replace_original === true));
    expect(received.find((m) => m.replace_original === true)?.text).toBe(
      `✅ alice approved plan of ${id}; the stage is approved.`,
    );
    const s: PipelineStatus = await status(handle);
    expect(s.audit.find((a) => a.kind === 'decision')).toMatchObject({
      person: 'alice',
      channel: 'slack',
      roles: ['R3'],
    });
    // The same signed request again is a replay.
    expect((await send(raw, headers)).status).toBe(401);
    await handle.result();
  });
});

describe('Slack notifications', () => {
  test('a waiting stage posts Approve and Reject buttons, its escalation follows, and a press approves it', async () => {
    const policy = await testPolicy(fx, {
      stages:
        '  - name: plan\n    approval: { roles: [R3], timeout: 2s, escalation: R8 }\n  - name: data\n    approval: false',
      extra: 'notifications: { slack: { channel: C0SECMLOPS } }',
    });
    const id = uniqueId('slack');
    const handle = await startPipeline(stack.client, policy, id);
    const ask = await waitUntil('the approval request in Slack', async () =>
      posted.find((p) => p.text.includes(id) && p.text.includes('waits for approval')),
    );
    expect(ask.channel).toBe('C0SECMLOPS');
    expect(ask.text).toBe(`SecMLOps: stage *plan* of ${id} (acme/models #7 @ aaaaaaaaaaaa) waits for approval by R3`);
    const buttons = ask.blocks.find((b) => b.type === 'actions')!.elements!;
    expect(buttons.map((b) => b.action_id)).toEqual(['approve', 'reject']);
    // The buttons carry the digest of the change the message shows: a press decides on that change only.
    expect(JSON.parse(buttons[0].value)).toEqual({
      workflowId: id,
      stage: 'plan',
      subjectDigest: (await status(handle)).subjectDigest,
    });
    const escalation = await waitUntil('the escalation in Slack', async () =>
      posted.find((p) => p.text.includes(id) && p.text.startsWith('SecMLOps escalation')),
    );
    expect(escalation.text).toContain('no decision after 2s; escalated to R8');
    // alice presses Approve in Slack: a console with the bot token receives what Slack would send.
    const withBot = createConsole({
      connect: async () => stack.client,
      slack: {
        signingSecret: SECRET,
        key: await loadPrivateKey(fx.key('slack')),
        botToken: 'xoxb-test-token',
        apiUrl: slackUrl,
      },
      state: openOnceStore(join(fx.dir, 'bot-state.sqlite'), 'TEST_STATE'),
    });
    const botUrl = await withBot.listen({ port: 0, host: '127.0.0.1' });
    const press = {
      type: 'block_actions',
      user: { id: 'U0ALICE01' },
      actions: [{ action_id: 'approve', value: buttons[0].value }],
      channel: { id: 'C0SECMLOPS' },
      container: { message_ts: '1700000000.000100' },
    };
    const raw = `payload=${encodeURIComponent(JSON.stringify(press))}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const r = await fetch(`${botUrl}/slack/interactivity`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': slackSignature(SECRET, ts, raw),
      },
      body: raw,
    });
    expect(r.status).toBe(200);
    await handle.result();
    expect((await status(handle)).audit.filter((a) => a.kind === 'decision')).toEqual([
      expect.objectContaining({ person: 'alice', channel: 'slack', decision: 'approve' }),
    ]);
    // The stand-in for Slack's Web API received the message and then its update, showing who decided.
    const update = await waitUntil('the message update', async () =>
      posted.find((p) => p.method === 'chat.update' && p.text.includes(id)),
    );
    expect(update).toMatchObject({
      channel: 'C0SECMLOPS',
      ts: '1700000000.000100',
      text: `✅ alice approved plan of ${id}; the stage is approved.`,
    });
    await withBot.close();
  }, 60_000);
});
