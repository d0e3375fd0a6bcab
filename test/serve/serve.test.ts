// The guarded inference server: a model trained and released by a real pipeline on the dev server is served from
// its attestation; unattested, re-signed or tampered models are refused at start with one line; every class of bad
// input is refused with a reason and counted, and the server keeps serving.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signEnvelope, type Envelope, type Statement } from '../../activities/attestation.js';
import { loadPrivateKey, loadPublicKey } from '../../activities/keys.js';
import { LocalArtifactStore } from '../../engine/io/artifact-store.js';
import { loadSplit } from '../../engine/data/fashion.js';
import { createSession, floatTensor } from '../../engine/runtime/session.js';
import { NotAttested, loadAttestedModel, type AttestedModel } from '../../serve/attested-model.js';
import { createServer, type Server } from '../../serve/server.js';
import { FASHION, makeFixture, testPolicy, withTrainingSet, type Fixture } from '../helpers/fixture.js';
import { result, startPipeline, startStack, uniqueId, waitForStage, type Stack } from '../helpers/temporal.js';

const run = promisify(execFile);
let fx: Fixture;
let stack: Stack | undefined;
let envelope: Envelope;
let attestationRef: string;
let trusted: string;
let attested: AttestedModel;
let server: Server;
let url: string;

beforeAll(async () => {
  fx = await makeFixture();
  const files = await withTrainingSet(fx);
  stack = await startStack(fx);
  const policy = await testPolicy(fx, {
    stages: '  - name: train\n    approval: false\n  - release',
    files,
    trainSplit: true,
    extra: 'train:\n  arch: small-cnn\n  epochs: 1\n  limit: 1000',
  });
  const id = uniqueId('serve');
  const handle = await startPipeline(stack.client, policy, id);
  await waitForStage(handle, 'release', ['waiting'], 120_000);
  await stack.decide(id, 'release', 'omar');
  await stack.decide(id, 'release', 'carol');
  const r = await result(handle);
  if (r.state !== 'passed') throw new Error(`the pipeline ${r.state}: ${r.reason}`);
  await stack.stop();
  stack = undefined;
  attestationRef = r.stages[1].artifacts.attestation;
  const store = new LocalArtifactStore(fx.artifacts);
  envelope = JSON.parse((await store.get(attestationRef)).toString()) as Envelope;
  trusted = await loadPublicKey(join(fx.keys, 'release.pub'));
  attested = await loadAttestedModel({ envelope, trustedKey: trusted, store });
  server = await createServer({ attested, maxBatch: 8, bodyLimit: 256 * 1024 });
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
}, 240_000);
afterAll(async () => {
  await server?.close();
  await stack?.stop();
});

const post = (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${url}/v1/predict`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });

describe('serving an attested model', () => {
  test('predictions equal the model’s own outputs on real test images', async () => {
    const test = await loadSplit(FASHION, 'test', { limit: 3 });
    const inputs = [0, 1, 2].map((i) => Array.from(test.images.subarray(i * 784, (i + 1) * 784)));
    const res = await post(JSON.stringify({ inputs }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model: string; predictions: number[]; probabilities: number[][] };
    expect(body.model).toBe(`sha256:${attested.sha256}`);
    const session = await createSession(attested.model);
    const logits = (await session.run({ input: floatTensor(test.images, [3, 1, 28, 28]) }))[session.outputNames[0]]
      .data as Float32Array;
    const want = [0, 1, 2].map((i) => {
      const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
      return row.indexOf(Math.max(...row));
    });
    expect(body.predictions).toEqual(want);
    for (const p of body.probabilities) expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // The same images as a raw uint8 tensor give the same predictions.
    const bytes = Buffer.from(Array.from(test.images, (v) => Math.round(v * 255)));
    const raw = await post(bytes, {
      'content-type': 'application/octet-stream',
      'x-secmlops-shape': '3,1,28,28',
      'x-secmlops-dtype': 'uint8',
    });
    expect(((await raw.json()) as { predictions: number[] }).predictions).toEqual(want);
    const health = (await (await fetch(`${url}/healthz`)).json()) as { status: string; model: string };
    expect(health).toMatchObject({ status: 'ok', model: `sha256:${attested.sha256}` });
  });

  const image = (v: unknown): unknown[] => Array.from({ length: 784 }, (_, k): unknown => (k === 5 ? v : 0));
  test.each([
    ['malformed JSON', '{"inputs": [[0,', 400, 'json'],
    ['no inputs field', JSON.stringify({ images: [] }), 400, 'json'],
    ['a wrong shape', JSON.stringify({ inputs: [new Array(783).fill(0)] }), 400, 'shape'],
    ['a batch over the limit', JSON.stringify({ inputs: new Array(9).fill(image(0)) }), 400, 'batch'],
    ['a string value', JSON.stringify({ inputs: [image('0.5')] }), 400, 'dtype'],
    ['NaN (sent as null)', JSON.stringify({ inputs: [image(null)] }), 400, 'dtype'],
    [
      'Infinity',
      `{"inputs": [[${image(0)
        .join(',')
        .replace(/^0,0,0,0,0,0/, '0,0,0,0,0,1e999')}]]}`,
      400,
      'not-finite',
    ],
    ['a value out of range', JSON.stringify({ inputs: [image(1.5)] }), 400, 'range'],
    ['an oversized body', JSON.stringify({ inputs: [image(0)], pad: 'x'.repeat(300 * 1024) }), 413, 'size'],
  ])('refuses %s with its status and reason, and keeps serving', async (_what, body, status, reason) => {
    const before = server.metrics.rejectionsFor(reason);
    const res = await post(body);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ reason });
    expect(server.metrics.rejectionsFor(reason)).toBe(before + 1);
    expect((await post(JSON.stringify({ inputs: [image(0)] }))).status).toBe(200);
  });

  test('refuses a wrong content type and a raw body that disagrees with its shape header', async () => {
    const text = await post('0,0,0', { 'content-type': 'text/plain' });
    expect(text.status).toBe(400);
    expect(await text.json()).toMatchObject({ reason: 'content-type' });
    const raw = await post(Buffer.alloc(784 * 4), {
      'content-type': 'application/octet-stream',
      'x-secmlops-shape': '2,1,28,28',
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ reason: 'shape' });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/secmlops_serve_rejections_total\{reason="content-type"\} 1/);
    expect(metrics).toMatch(/secmlops_serve_request_seconds_count \d+/);
    expect(metrics).toContain(`secmlops_serve_model_info{sha256="${attested.sha256}"} 1`);
  });
});

describe('refusing to serve', () => {
  const store = () => new LocalArtifactStore(fx.artifacts);

  test('an attestation signed by another key', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as Statement;
    await expect(
      loadAttestedModel({ envelope: signEnvelope(statement, privateKey), trustedKey: trusted, store: store() }),
    ).rejects.toThrow(/^refusing to serve: the attestation does not open: no signature in the envelope verifies/);
  });

  test('an attestation re-signed with the real release key after its model digest was swapped', async () => {
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as Statement;
    const other = await store().put(Buffer.from('not the released model'));
    statement.subject = statement.subject.map((s) =>
      s.name === 'model' ? { ...s, digest: { sha256: other.digest } } : s,
    );
    const forged = signEnvelope(statement, await loadPrivateKey(fx.key('release')));
    await expect(loadAttestedModel({ envelope: forged, trustedKey: trusted, store: store() })).rejects.toThrow(
      /^refusing to serve: the attestation does not check: the statement gives model the digest/,
    );
  });

  test('a model file changed in the store after release', async () => {
    const path = store().pathOf(attested.sha256);
    const original = await readFile(path);
    try {
      const bytes = Buffer.from(original);
      bytes[bytes.length - 1] ^= 1;
      await writeFile(path, bytes);
      await expect(loadAttestedModel({ envelope, trustedKey: trusted, store: store() })).rejects.toThrow(NotAttested);
      await expect(loadAttestedModel({ envelope, trustedKey: trusted, store: store() })).rejects.toThrow(
        /is corrupt or tampered/,
      );
    } finally {
      await writeFile(path, original);
    }
  });

  test('secmlops serve exits with one line naming why', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as Statement;
    const file = join(fx.dir, 'foreign.json');
    await writeFile(file, JSON.stringify(signEnvelope(statement, privateKey)));
    const r = run(process.execPath, [
      'bin/secmlops.js',
      'serve',
      '--attestation',
      file,
      '--key',
      join(fx.keys, 'release.pub'),
      '--artifacts',
      fx.artifacts,
    ]);
    await expect(r).rejects.toMatchObject({ code: 1 });
    const err = await r.catch((e: { stderr: string }) => e);
    const lines = err.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.includes('npm warn'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^secmlops: error: refusing to serve: the attestation does not open/);
  }, 30_000);
});

describe('requests built to exhaust the server', () => {
  test('a body sent a byte at a time is cut off, and the server keeps serving', async () => {
    const slow = await createServer({ attested, requestTimeoutMs: 500 });
    const address = await slow.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(
      'POST /v1/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 9000\r\n\r\n{"in',
    );
    const closed = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      socket.on('close', () => resolve(Date.now() - t0));
      socket.on('error', () => undefined);
      setTimeout(() => resolve(-1), 5000);
    });
    socket.destroy();
    expect(closed).toBeGreaterThan(0);
    expect(closed).toBeLessThan(4000);
    const ok = await fetch(`${address}/v1/predict`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [new Array(784).fill(0)] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(ok.status).toBe(200);
    await slow.close();
  }, 20_000);
});

describe('refusing what the operator did not approve', () => {
  const store = () => new LocalArtifactStore(fx.artifacts);

  test('a release that ran under another policy than the operator’s, or a model the policy does not pin', async () => {
    await expect(
      loadAttestedModel({ envelope, trustedKey: trusted, store: store(), policy: { digest: 'f'.repeat(64) } }),
    ).rejects.toThrow(/^refusing to serve: the release ran under policy [0-9a-f]{12}…, not the given policy/);
    const digest = attested.predicate.policyDigest;
    await expect(
      loadAttestedModel({
        envelope,
        trustedKey: trusted,
        store: store(),
        policy: { digest, modelSha256: 'e'.repeat(64) },
      }),
    ).rejects.toThrow('is not the model the policy pins');
    await expect(
      loadAttestedModel({ envelope, trustedKey: trusted, store: store(), policy: { digest } }),
    ).resolves.toMatchObject({ sha256: attested.sha256 });
  });

  test('a small-order "trusted" key, under which anyone could sign, is refused', async () => {
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    await expect(
      loadAttestedModel({ envelope, trustedKey: identity.toString('base64'), store: store() }),
    ).rejects.toThrow(/^refusing to serve: the attestation does not open: the trusted key is unusable/);
  });
});
