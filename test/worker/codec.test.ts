// With SECMLOPS_PAYLOAD_KEY set, names and comments are not plain text in Temporal's history; the CLI decodes them.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { AesGcmCodec } from '../../worker/codec.js';
import { dataConverter, decodePayloads } from '../../worker/connection.js';
import { makeFixture, testPolicy } from '../helpers/fixture.js';
import { startPipeline, testAddress, uniqueId, waitForStage, workflowBundle } from '../helpers/temporal.js';
import { createActivities } from '../../activities/index.js';
import { TASK_QUEUE } from '../../workflows/messages.js';

const key = randomBytes(32).toString('base64');
let saved: string | undefined;

beforeAll(() => {
  saved = process.env.SECMLOPS_PAYLOAD_KEY;
  process.env.SECMLOPS_PAYLOAD_KEY = key;
});
afterAll(() => {
  if (saved === undefined) delete process.env.SECMLOPS_PAYLOAD_KEY;
  else process.env.SECMLOPS_PAYLOAD_KEY = saved;
});

describe('payload encryption', () => {
  test('round-trips, and refuses a wrong key or a bad key setting', async () => {
    const codec = AesGcmCodec.fromEnv()!;
    const payload = {
      metadata: { encoding: new TextEncoder().encode('json/plain') },
      data: new TextEncoder().encode('"secret"'),
    };
    const [enc] = await codec.encode([payload]);
    expect(Buffer.from(enc.data!).toString()).not.toContain('secret');
    const [dec] = await codec.decode([enc]);
    expect(Buffer.from(dec.data!).toString()).toBe('"secret"');
    expect(Buffer.from(dec.metadata!.encoding).toString()).toBe('json/plain');
    await expect(new AesGcmCodec(randomBytes(32)).decode([enc])).rejects.toThrow(
      /payload was encrypted with key [0-9a-f]{16}, but this process holds key/,
    );
    expect(() => AesGcmCodec.fromEnv({ SECMLOPS_PAYLOAD_KEY: 'c2hvcnQ=' })).toThrow(
      'SECMLOPS_PAYLOAD_KEY must be base64 of 32 random bytes',
    );
  });

  test('history payloads on a real server are ciphertext, and the CLI-side client reads them', async () => {
    const fx = await makeFixture();
    const policy = await testPolicy(fx, { stages: '  - plan' });
    const connection = await Connection.connect({ address: testAddress() });
    const client = new Client({ connection, dataConverter: dataConverter() });
    const native = await NativeConnection.connect({ address: testAddress() });
    const a = createActivities({ artifactsDir: fx.artifacts, releaseKeyPath: fx.key('release'), trust: fx.trust });
    const worker = await Worker.create({
      connection: native,
      taskQueue: TASK_QUEUE,
      workflowBundle: workflowBundle(),
      activities: a,
      dataConverter: dataConverter(),
    });
    await worker.runUntil(async () => {
      const handle = await startPipeline(client, policy, uniqueId('codec'));
      const s = await waitForStage(handle, 'plan', ['waiting']);
      expect(s.policyName).toBe('test');
      const history = await handle.fetchHistory();
      const input = history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads!;
      expect(input).toHaveLength(1);
      expect(new TextDecoder().decode(input[0].metadata!.encoding)).toBe('binary/encrypted');
      expect(Buffer.from(input[0].data!).toString('latin1')).not.toContain('acme/models');
      const [start] = (await decodePayloads([input[0]])) as { start: { request: { subject: unknown } } }[];
      expect(start.start.request.subject).toMatchObject({ repo: 'acme/models', author: 'mia-ml' });
      // The policy the worker resolved travels back as the start activity's result: encrypted too.
      const resolved = history.events!.find((e) => e.activityTaskCompletedEventAttributes)!
        .activityTaskCompletedEventAttributes!.result!.payloads!;
      expect(new TextDecoder().decode(resolved[0].metadata!.encoding)).toBe('binary/encrypted');
      expect(Buffer.from(resolved[0].data!).toString('latin1')).not.toContain('alice-sec');
      await handle.terminate('test done');
    });
    await native.close();
    await connection.close();
  });
});
