// Federated averaging on a real Temporal server: three clients on their own task queues, a client killed in the
// middle of a round, secure aggregation, continue-as-new, and updates from someone polling a client's queue.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type NativeConnection, Worker } from '@temporalio/worker';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { loadPrivateKey } from '../../activities/keys.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { signStatement, type SignedStatement } from '../../activities/federated-statement.js';
import { parameterCount, weightedMean } from '../../engine/federated/vector.js';
import { mlp } from '../../engine/train/zoo.js';
import { dataConverter } from '../../worker/connection.js';
import { signFederationStart } from '../../activities/federated-start.js';
import { federatedTraining } from '../../workflows/federated.js';
import { rogueFederation } from '../helpers/rogue-workflows.js';
import { CLIENTS, FederationBench, causes } from '../helpers/federation.js';
import type { Fixture } from '../helpers/fixture.js';
import { childPids, spawnWorker, waitUntil, type WorkerProcess } from '../helpers/processes.js';
import { testAddress, uniqueId, type Stack } from '../helpers/temporal.js';

const bench = new FederationBench();
let fx: Fixture;
let stack: Stack;
let native: NativeConnection;
const spawned: WorkerProcess[] = [];

beforeAll(async () => {
  await bench.setup();
  ({ fx, stack, native } = bench);
});
afterAll(async () => {
  spawned.forEach((w) => w.child.kill('SIGKILL'));
  await bench.teardown();
});

const startClients = (ids: string[]) => bench.startClients(ids);
const stopClients = () => bench.stopClients();
const federatedPolicy = (name: string, federated: string, limit?: number) => bench.policy(name, federated, limit);
const start = (policy: string, id?: string) => bench.start(policy, id);
const vectorOf = (_store: LocalArtifactStore, ref: string, count: number) => bench.vectorOf(ref, count);

describe('federated averaging', () => {
  test('three IID clients: each round averages their signed updates by sample count; continues as new', async () => {
    await startClients(CLIENTS);
    try {
      const policy = await federatedPolicy('plain', '    rounds: 2\n    roundsPerRun: 1');
      const handle = await start(policy);
      const out = await handle.result();
      expect(out.rounds).toHaveLength(2);
      const store = new LocalArtifactStore(fx.artifacts);
      for (const r of out.rounds) {
        expect(r.clients.map((c) => c.id).sort()).toEqual(CLIENTS);
        expect(r.clients.reduce((s, c) => s + c.samples, 0)).toBe(3000);
      }
      // Each global model is the sample-weighted mean of the updates the clients stored, computed here again.
      const count = parameterCount(mlp);
      for (const r of out.rounds) {
        const parts = await Promise.all(
          r.clients.map(async (c) => ({ vector: await vectorOf(store, c.update, count), samples: c.samples })),
        );
        expect(Array.from(await vectorOf(store, r.global, count))).toEqual(Array.from(weightedMean(parts)));
      }
      const desc = await handle.describe();
      expect(desc.runId).not.toBe(handle.firstExecutionRunId);
      expect(out.rounds[1].testAccuracy).toBeGreaterThan(0.6);
      expect(out.rounds[1].testAccuracy).toBeGreaterThanOrEqual(out.rounds[0].testAccuracy! - 0.05);
    } finally {
      await stopClients();
    }
  }, 240_000);

  test('secure aggregation: client-3 killed mid-round; the quorum completes the round, the masks cancel', async () => {
    await startClients(['client-1', 'client-2']);
    const env = { ...fx.env, SECMLOPS_HOME: fx.dir, TEMPORAL_ADDRESS: testAddress() };
    const third = await spawnWorker(env, 'client-3');
    spawned.push(third);
    try {
      const policy = await federatedPolicy(
        'secure',
        '    rounds: 1\n    quorum: 2\n    secureAggregation: true\n    roundTimeout: 15s',
      );
      const id = uniqueId('fedavg-secure');
      const handle = await start(policy, id);
      // The client's engine job is running: kill the worker and its job as a crash would.
      const jobs = await waitUntil('client-3 training', () => {
        const pids = childPids(third.child.pid!);
        return pids.length ? pids : undefined;
      });
      third.child.kill('SIGKILL');
      jobs.forEach((pid) => process.kill(pid, 'SIGKILL'));
      const out = await handle.result();
      const [round] = out.rounds;
      expect(round.clients.map((c) => c.id).sort()).toEqual(['client-1', 'client-2']);
      expect(out.missing.map((m) => m.client)).toEqual(['client-3']);
      // The server saw masked contributions only. Training is deterministic, so a plain twin of this federation
      // (client-3 still down) has the clients send in the clear what they kept here: the masked sum equals its mean.
      const twin = await federatedPolicy('secure-twin', '    rounds: 1\n    quorum: 2\n    roundTimeout: 15s');
      const plain = (await (await start(twin)).result()).rounds[0];
      expect(plain.clients.map((c) => c.id).sort()).toEqual(['client-1', 'client-2']);
      const count = parameterCount(mlp);
      const store = new LocalArtifactStore(fx.artifacts);
      for (const c of round.clients) {
        const clear = plain.clients.find((p) => p.id === c.id)!;
        expect(c.samples).toBe(clear.samples);
        const masked = await store.get(`sha256:${c.update}`);
        expect(masked.equals(await store.get(`sha256:${clear.update}`))).toBe(false);
      }
      const [global, mean] = [await vectorOf(store, round.global, count), await vectorOf(store, plain.global, count)];
      let worst = 0;
      for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(global[i] - mean[i]));
      expect(worst).toBeLessThan(3 * 2 ** -20);
      // Nothing of the round is left unmasked on the clients' disks.
      const name = createHash('sha256').update(`${id}\n1`).digest('hex').slice(0, 32);
      for (const c of round.clients)
        await expect(readFile(join(fx.dir, 'federated', c.id, `${name}.f32`))).rejects.toThrow('ENOENT');
      expect(round.testAccuracy).toBeGreaterThan(0.5);
    } finally {
      await stopClients();
    }
  }, 240_000);

  test("an update from a rogue poller of a client's queue, signed with another key, fails the round", async () => {
    await startClients(['client-1', 'client-3']);
    const store = new LocalArtifactStore(fx.artifacts);
    const { privateKey } = generateKeyPairSync('ed25519');
    // A rogue process on client-2's queue: it answers with an update of its own (zeros), signed by its own key.
    const rogue = await Worker.create({
      connection: native,
      namespace: 'default',
      taskQueue: 'client-2',
      dataConverter: dataConverter(),
      activities: {
        clientTrain: async (input: { round: number; base: string }): Promise<SignedStatement> => {
          const stored = await store.put(new Uint8Array(parameterCount(mlp) * 4));
          return signStatement(privateKey, {
            v: 1,
            federation: Context.current().info.workflowExecution!.workflowId,
            round: input.round,
            client: 'client-2',
            base: input.base.replace(/^sha256:/, ''),
            samples: 1_000_000,
            kind: 'update',
            update: stored.digest,
          });
        },
      },
    });
    const rogueRun = rogue.run();
    try {
      const policy = await federatedPolicy('rogue', '    rounds: 1');
      const err = await start(policy).then((h) =>
        h.result().then(
          () => undefined,
          (e: Error) => e,
        ),
      );
      expect(causes(err)).toContain(
        'client client-2: the signature does not verify under the key the policy pins for it',
      );
    } finally {
      rogue.shutdown();
      await rogueRun;
      await stopClients();
    }
  }, 240_000);

  test('a start signed for another workflow, replayed under a new ID, is refused before clients train', async () => {
    await startClients(['client-1']);
    try {
      const policy = await federatedPolicy('replay', '    rounds: 1', 600);
      const signed = signFederationStart(await loadPrivateKey(fx.key('cli')), 'someone-elses-federation', policy);
      const handle = await stack.client.workflow.start(federatedTraining, {
        taskQueue: 'secmlops',
        workflowId: uniqueId('fedavg-replay'),
        args: [{ policy, start: signed }],
      });
      const err = await handle.result().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(causes(err)).toContain('federation start refused: signed for workflow someone-elses-federation');
      const forged = { ...signed, start: { ...signed.start, workflowId: handle.workflowId } };
      const second = await stack.client.workflow.start(federatedTraining, {
        taskQueue: 'secmlops',
        workflowId: uniqueId('fedavg-forged'),
        args: [{ policy, start: forged }],
      });
      const err2 = await second.result().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(causes(err2)).toContain('not signed by a start key this worker pins');
    } finally {
      await stopClients();
    }
  }, 120_000);

  test('workflow code an attacker drives cannot make a client mask or reveal twice, or the server skip a round', async () => {
    await startClients(CLIENTS);
    const rogue = await Worker.create({
      connection: native,
      taskQueue: 'rogue',
      workflowsPath: resolve('test/helpers/rogue-workflows.ts'),
    });
    try {
      const policy = await federatedPolicy(
        'rogue-workflow',
        '    rounds: 2\n    quorum: 2\n    secureAggregation: true',
        600,
      );
      const workflowId = uniqueId('rogue-federation');
      const start = signFederationStart(await loadPrivateKey(fx.key('cli')), workflowId, policy);
      const out: string[] = await rogue.runUntil(
        stack.client.workflow.execute(rogueFederation, { taskQueue: 'rogue', workflowId, args: [{ policy, start }] }),
      );
      expect(out).toEqual([
        expect.stringContaining('client-1 already masked round 1 for another set of participants'),
        'ok',
        expect.stringContaining('client-1 already revealed its shares in round 1 for another set of masked inputs'),
        'ok',
        'ok',
        expect.stringContaining('this round was already aggregated from other statements'),
        expect.stringContaining('not the global model round 1 produced'),
        expect.stringContaining('client-2 already trained round 1 of'),
        'round 99 is not one of 1..2',
      ]);
      // The unmasked update is gone from client-1's disk once its contribution exists.
      const name = createHash('sha256').update(`${workflowId}\n1`).digest('hex').slice(0, 32);
      await expect(readFile(join(fx.dir, 'federated', 'client-1', `${name}.f32`))).rejects.toThrow('ENOENT');
    } finally {
      await stopClients();
    }
  }, 240_000);

  test('fewer clients than the quorum: the round fails, naming the quorum', async () => {
    await startClients(['client-1']);
    try {
      const policy = await federatedPolicy('quorum', '    rounds: 1\n    quorum: 2\n    roundTimeout: 10s', 600);
      const err = await start(policy).then((h) =>
        h.result().then(
          () => undefined,
          (e: Error) => e,
        ),
      );
      expect(causes(err)).toContain('round 1: 1 clients trained, fewer than the quorum of 2');
    } finally {
      await stopClients();
    }
  }, 120_000);
});
