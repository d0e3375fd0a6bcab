// The console's monitor view in Debian's Chromium against the real dev server: a tampered model file opens an
// integrity incident, the incident responder is told in Slack (a local stand-in for its Web API), only R8 sees the
// resolution form, and a rollback chosen in the browser is accepted by the monitor workflow.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { loadPrivateKey, loadPublicKey } from '../../activities/keys.js';
import { monitorStatus } from '../../client/incidents.js';
import { openOnceStore } from '../../client/once-store.js';
import { createConsole } from '../../console/server.js';
import { issueToken } from '../../console/tokens.js';
import { LocalArtifactStore } from '../../engine/io/artifact-store.js';
import { makeFixture, type Fixture } from '../helpers/fixture.js';
import { exampleModel, monitoredReleases, type MonitoredReleases } from '../helpers/monitored.js';
import { waitUntil } from '../helpers/processes.js';
import { startStack, type Stack } from '../helpers/temporal.js';

const CHROMIUM = process.env.SECMLOPS_CHROMIUM ?? '/usr/bin/chromium';
let fx: Fixture;
let stack: Stack;
let app: FastifyInstance;
let url: string;
let browser: Browser;
let slackApi: Server;
let releases: MonitoredReleases;
const posted: { channel: string; text: string }[] = [];

beforeAll(async () => {
  fx = await makeFixture();
  slackApi = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const ok = req.url === '/api/chat.postMessage' && req.headers.authorization === 'Bearer xoxb-test-token';
      const form = new URLSearchParams(raw);
      if (ok) posted.push({ channel: form.get('channel')!, text: form.get('text')! });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(ok ? { ok: true, channel: 'C0SECMLOPS', ts: '1.1' } : { ok: false, error: 'invalid_auth' }),
      );
    });
  });
  await new Promise<void>((r) => slackApi.listen(0, '127.0.0.1', r));
  const apiUrl = `http://127.0.0.1:${(slackApi.address() as AddressInfo).port}/api/`;
  stack = await startStack(fx, undefined, undefined, { token: 'xoxb-test-token', apiUrl });
  app = createConsole({
    connect: async () => stack.client,
    tokenPublicKey: await loadPublicKey(`${fx.keys}/token.pub`),
    consoleKey: await loadPrivateKey(fx.key('console')),
    state: openOnceStore(join(fx.dir, 'console-state.sqlite'), 'TEST_STATE'),
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  releases = await monitoredReleases(stack, fx, {
    consoleChannel: true,
    extra: 'notifications: { slack: { channel: C0SECMLOPS } }',
  });
}, 240_000);
afterAll(async () => {
  for (const id of releases?.monitors ?? [])
    await stack.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  await browser?.close();
  await app?.close();
  await new Promise<void>((r) => (slackApi ? slackApi.close(() => r()) : r()));
  await stack?.stop();
});

async function signIn(person: string) {
  const key = await loadPrivateKey(fx.key('token'));
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${url}/signin`);
  await page.fill('#token', issueToken(person, 3600_000, key));
  await page.click('button[type=submit]');
  return page;
}

describe('the console’s monitor view', () => {
  test('an integrity incident is shown, told in Slack, and resolved by R8 with a rollback from the browser', async () => {
    const { a, b } = releases;
    const shaB = (await monitorStatus(stack.client, b.id)).serving.modelSha256;
    // Tamper with the served model's file in the store: the next window's re-hash catches it.
    await writeFile(new LocalArtifactStore(fx.artifacts).pathOf(shaB), await exampleModel(1));
    await waitUntil(
      'an integrity incident',
      async () => ((await monitorStatus(stack.client, b.id)).incidents.length ? true : undefined),
      20_000,
    );
    await waitUntil('the Slack notice', () => (posted.length ? true : undefined), 10_000);
    expect(posted[0].channel).toBe('C0SECMLOPS');
    expect(posted[0].text).toMatch(
      new RegExp(`^SecMLOps incident 1 \\(integrity\\) on the model sha256:${shaB.slice(0, 12)}`),
    );
    expect(posted[0].text).toContain(`secmlops incident ${b.id} 1`);

    // The pipeline page links to the monitor; anyone signed in sees it, without a form unless they hold R8.
    const alice = await signIn('alice');
    await alice.goto(`${url}/pipelines/${b.id}`);
    await alice.click('section[data-stage=monitor] a');
    expect(alice.url()).toBe(`${url}/pipelines/${b.id}/monitor`);
    const row = alice.locator('tr[data-incident="1"]');
    expect(await row.locator('td').nth(1).textContent()).toBe('integrity');
    expect(await row.textContent()).toContain('now hashes to');
    expect(await row.locator('form').count()).toBe(0);
    expect(await alice.locator('#windows tr[data-window]').count()).toBeGreaterThan(0);

    // The incident responder rolls back to release A from the browser.
    const ivan = await signIn('ivan');
    await ivan.goto(`${url}/pipelines/${b.id}/monitor`);
    await ivan.fill('tr[data-incident="1"] input[name=attestation]', a.attestation);
    await ivan.fill('tr[data-incident="1"] textarea[name=comment]', 'B is tampered; back to A');
    await ivan.click('tr[data-incident="1"] button[value=rollback]');
    expect(await ivan.locator('#flash').textContent()).toBe('Incident 1 resolved.');
    expect(await ivan.locator('tr[data-incident="1"]').textContent()).toContain(`rollback to ${a.attestation}`);
    const serving = (await monitorStatus(stack.client, b.id)).serving;
    expect(serving).toMatchObject({ attestation: a.attestation, pipeline: a.id });
    expect(await ivan.locator('#serving').textContent()).toBe(`sha256:${serving.modelSha256}`);
    const decided = (await monitorStatus(stack.client, b.id)).audit.find((e) => e.kind === 'decision');
    expect(decided).toMatchObject({ person: 'ivan', channel: 'console', comment: 'B is tampered; back to A' });
  }, 120_000);
});
