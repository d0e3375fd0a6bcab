// Federated averaging on a real Temporal server: three clients on their own task queues, a client killed in the
// middle of a round, secure aggregation, continue-as-new, and updates from someone polling a client's queue.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { NativeConnection, Worker } from '@temporalio/worker';
import { copyFile, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ensureDevKeys, loadPrivateKey } from '../../activities/keys.js';
import { ArtifactStore } from '../../activities/store.js';
import { signStatement, type SignedStatement } from '../../activities/federated-statement.js';
import { l2Norm, noisyAverage } from '../../engine/federated/dp-fedavg.js';
import { parameterCount, readVector, weightedMean } from '../../engine/federated/vector.js';
import { epsilon } from '../../engine/privacy/rdp.js';
import { mlp } from '../../engine/train/zoo.js';
import { createWorkers } from '../../worker/workers.js';
import { createClientActivities } from '../../activities/index.js';
import { dataConverter } from '../../worker/connection.js';
import { startFederation } from '../../client/federation.js';
import { signFederationStart } from '../../activities/federated-start.js';
import { federatedTraining } from '../../workflows/federated.js';
import { rogueFederation } from '../helpers/rogue-workflows.js';
import {
  FASHION,
  TRAIN_FILES,
  makeFixture,
  sha256,
  testPolicyText,
  policyFromText,
  type Fixture,
} from '../helpers/fixture.js';
import { childPids, spawnWorker, waitUntil, type WorkerProcess } from '../helpers/processes.js';
import { startStack, testAddress, uniqueId, type Stack } from '../helpers/temporal.js';
import { writeFile, mkdir } from 'node:fs/promises';

const CLIENTS = ['client-1', 'client-2', 'client-3'];
let fx: Fixture;
let stack: Stack;
let native: NativeConnection;
let clients: Worker[] = [];
let running: Promise<void>[] = [];
const spawned: WorkerProcess[] = [];

beforeAll(async () => {
  fx = await makeFixture();
  await ensureDevKeys(fx.keys, CLIENTS);
  for (const f of TRAIN_FILES) await copyFile(join(FASHION, f), join(fx.dataset, f));
  stack = await startStack(fx);
  native = await NativeConnection.connect({ address: testAddress() });
});
afterAll(async () => {
  spawned.forEach((w) => w.child.kill('SIGKILL'));
  await stopClients();
  await native?.close();
  await stack?.stop();
});

/** In-process client workers for the given ids, each with its own key from the fixture. */
async function startClients(ids: string[]): Promise<void> {
  clients = await createWorkers({
    connection: native,
    namespace: 'default',
    queues: ids.map((id) => `client:${id}` as const),
    artifactsDir: fx.artifacts,
    releaseKeyPath: fx.key('release'),
    trust: fx.trust,
    clientKeyPath: (id) => fx.key(id),
    clientStateDir: join(fx.dir, 'federated'),
  });
  running = clients.map((w) => w.run());
}

async function stopClients(): Promise<void> {
  for (const w of clients) if (w.getState() === 'RUNNING') w.shutdown();
  await Promise.allSettled(running);
  clients = [];
}

/** A policy with a federated train block over the first `limit` training images, written to the policy source. */
async function federatedPolicy(name: string, federated: string, limit = 3000): Promise<string> {
  const files = await Promise.all(
    [...TRAIN_FILES, 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => ({
      path: f,
      sha256: await sha256(join(fx.dataset, f)),
    })),
  );
  const clientsYaml = CLIENTS.map((c) => `      - { id: ${c}, publicKeyFile: ../keys/${c}.pub }`).join('\n');
  const text = await testPolicyText(fx, {
    files,
    trainSplit: true,
    extra: `train:
  arch: mlp
  limit: ${limit}
  batch: 64
  federated:
    clients:
${clientsYaml}
${federated}
evaluate:
  limit: 1000
  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]`,
  });
  // Parsed here as the workers will parse it, so a mistake shows as a policy error rather than a failed round.
  policyFromText(fx, text.replace(/\.\.\/keys\//g, 'keys/'));
  await mkdir(join(fx.dir, 'policies'), { recursive: true });
  const ref = `policies/${name}.yaml`;
  await writeFile(join(fx.dir, ref), text.replace(/publicKeyFile: keys\//g, 'publicKeyFile: ../keys/'));
  return ref;
}

async function start(policy: string, id = uniqueId('fedavg')) {
  return startFederation(stack.client, { workflowId: id, policyRef: policy, key: await loadPrivateKey(fx.key('cli')) });
}

async function vectorOf(store: ArtifactStore, ref: string, count: number): Promise<Float32Array> {
  return readVector(await store.get(ref.startsWith('sha256:') ? ref : `sha256:${ref}`), count, ref);
}

describe('federated averaging', () => {
  test('three IID clients: each round averages their signed updates by sample count; continues as new', async () => {
    await startClients(CLIENTS);
    try {
      const policy = await federatedPolicy('plain', '    rounds: 2\n    roundsPerRun: 1');
      const handle = await start(policy);
      const out = await handle.result();
      expect(out.rounds).toHaveLength(2);
      const store = new ArtifactStore(fx.artifacts);
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

  test('DP-FedAvg: clipped changes, the seeded noise and ε per round, recomputed here; with secure aggregation too', async () => {
    await startClients(CLIENTS);
    try {
      const dp = '    dp: { clip: 0.5, noiseMultiplier: 0.01, delta: 0.001 }';
      const id = uniqueId('fedavg-dp');
      const out = await (await start(await federatedPolicy('dp', `    rounds: 2\n${dp}`), id)).result();
      const store = new ArtifactStore(fx.artifacts);
      const count = parameterCount(mlp);
      const chain = join(
        dirname(fx.artifacts),
        'federations',
        createHash('sha256').update(id).digest('hex').slice(0, 32),
      );
      let base: string | undefined;
      for (const r of out.rounds) {
        // The server's chain of rounds names the global model each round started from: round r − 1's result.
        const link = JSON.parse(await readFile(join(chain, `round-${r.round}.json`), 'utf8')) as { base: string };
        if (base) expect(`sha256:${link.base}`).toBe(base);
        // What each client sent is its change from the global model, within the clipping norm.
        const sum = new Float32Array(count);
        for (const c of r.clients) {
          const change = await vectorOf(store, c.update, count);
          expect(l2Norm(change)).toBeLessThanOrEqual(0.5);
          change.forEach((v, i) => (sum[i] += v));
          expect(c).not.toHaveProperty('loss');
        }
        const seed = await readFile(join(chain, `round-${r.round}.seed`));
        const round = { clip: 0.5, noiseMultiplier: 0.01, clients: 3, seed };
        const expected = noisyAverage(await vectorOf(store, link.base, count), sum, round, false);
        const global = await vectorOf(store, r.global, count);
        let worst = 0;
        for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(global[i] - expected[i]));
        expect(worst).toBeLessThan(1e-6);
        const spent = epsilon({ sampleRate: 1, noiseMultiplier: 0.01, steps: r.round }, 0.001).epsilon;
        expect(r.privacy).toEqual({ epsilon: spent, delta: 0.001, noiseMultiplier: 0.01, clip: 0.5 });
        base = r.global;
      }
      expect(out.rounds[1].privacy!.epsilon).toBeGreaterThan(out.rounds[0].privacy!.epsilon);
      // With secure aggregation: masked changes at a weight of 1/K each, and the same accounting.
      const policy = await federatedPolicy('dp-secure', `    rounds: 1\n    secureAggregation: true\n${dp}`);
      const [secure] = (await (await start(policy)).result()).rounds;
      expect(secure.clients).toHaveLength(3);
      expect(secure.privacy?.epsilon).toBe(epsilon({ sampleRate: 1, noiseMultiplier: 0.01, steps: 1 }, 0.001).epsilon);
      // One clipped step from the initialisation: far from trained, but well above chance (uncancelled masks
      // would leave noise of the size of the 32-bit words behind, and chance's 10%).
      expect(secure.testAccuracy).toBeGreaterThan(0.25);
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
      const store = new ArtifactStore(fx.artifacts);
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

  test('secure aggregation: client-3 drops after dealing its shares; the survivors reveal, the round completes', async () => {
    await startClients(['client-1', 'client-2']);
    // client-3's worker runs the real activities, but goes down once it has shared its keys: its masking fails.
    const activities = createClientActivities({
      artifactsDir: fx.artifacts,
      trust: fx.trust,
      client: { id: 'client-3', key: () => loadPrivateKey(fx.key('client-3')), stateDir: join(fx.dir, 'federated') },
    });
    const third = await Worker.create({
      connection: native,
      taskQueue: 'client-3',
      dataConverter: dataConverter(),
      activities: {
        ...activities,
        clientMask: () => Promise.reject(ApplicationFailure.nonRetryable('client-3 went down', 'ClientDown')),
      },
    });
    const running3 = third.run();
    try {
      const secure = await federatedPolicy('dropped', '    rounds: 1\n    quorum: 2\n    secureAggregation: true');
      const [round] = (await (await start(secure)).result()).rounds;
      expect(round.clients.map((c) => c.id).sort()).toEqual(['client-1', 'client-2']);
      // The plain twin, client-3 down from the start: clients 1 and 2 train the same updates (training is seeded)
      // and send them in the clear. The recovered sum is their sample-weighted mean.
      third.shutdown();
      await running3;
      const twin = await federatedPolicy('dropped-twin', '    rounds: 1\n    quorum: 2\n    roundTimeout: 10s');
      const plain = (await (await start(twin)).result()).rounds[0];
      const count = parameterCount(mlp);
      const store = new ArtifactStore(fx.artifacts);
      const [global, mean] = [await vectorOf(store, round.global, count), await vectorOf(store, plain.global, count)];
      let worst = 0;
      for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(global[i] - mean[i]));
      expect(worst).toBeLessThan(1e-5);
    } finally {
      if (third.getState() === 'RUNNING') third.shutdown();
      await running3.catch(() => undefined);
      await stopClients();
    }
  }, 240_000);

  test("an update from a rogue poller of a client's queue, signed with another key, fails the round", async () => {
    await startClients(['client-1', 'client-3']);
    const store = new ArtifactStore(fx.artifacts);
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

/** Every message in an error's cause chain, joined. */
function causes(e: unknown): string {
  const out: string[] = [];
  let err = e as { message?: string; cause?: unknown } | undefined;
  while (err) {
    out.push(err.message ?? '');
    err = err.cause as typeof err;
  }
  return out.join(' | ');
}
