// Federated averaging's privacy on a real Temporal server: DP-FedAvg's clipped, noised averages recomputed from what
// the server kept, and secure aggregation completing a round after a client drops once it has dealt its shares.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type NativeConnection, Worker } from '@temporalio/worker';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { createClientActivities } from '../../activities/index.js';
import { loadPrivateKey } from '../../activities/keys.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { l2Norm, noisyAverage } from '../../engine/federated/dp-fedavg.js';
import { parameterCount } from '../../engine/federated/vector.js';
import { epsilon } from '../../engine/privacy/rdp.js';
import { mlp } from '../../engine/train/zoo.js';
import { dataConverter } from '../../worker/connection.js';
import { CLIENTS, FederationBench } from '../helpers/federation.js';
import type { Fixture } from '../helpers/fixture.js';
import { uniqueId } from '../helpers/temporal.js';

const bench = new FederationBench();
let fx: Fixture;
let native: NativeConnection;

beforeAll(async () => {
  await bench.setup();
  ({ fx, native } = bench);
});
afterAll(() => bench.teardown());

const startClients = (ids: string[]) => bench.startClients(ids);
const stopClients = () => bench.stopClients();
const federatedPolicy = (name: string, federated: string, limit?: number) => bench.policy(name, federated, limit);
const start = (policy: string, id?: string) => bench.start(policy, id);
const vectorOf = (_store: LocalArtifactStore, ref: string, count: number) => bench.vectorOf(ref, count);

describe('federated averaging with privacy', () => {
  test('DP-FedAvg: clipped changes, the seeded noise and ε per round, recomputed here; with secure aggregation too', async () => {
    await startClients(CLIENTS);
    try {
      const dp = '    dp: { clip: 0.5, noiseMultiplier: 0.01, delta: 0.001 }';
      const id = uniqueId('fedavg-dp');
      const out = await (await start(await federatedPolicy('dp', `    rounds: 2\n${dp}`), id)).result();
      const store = new LocalArtifactStore(fx.artifacts);
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
      const store = new LocalArtifactStore(fx.artifacts);
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
});
