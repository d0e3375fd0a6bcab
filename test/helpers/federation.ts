// A federation test bench on a real Temporal dev server: the fixture with the three clients' keys and the training
// files, in-process client workers started and stopped per test, federated policies written to the policy source,
// and federations started with the fixture's CLI key. Shared by the federated workflow suites.
import { NativeConnection, type Worker } from '@temporalio/worker';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDevKeys, loadPrivateKey } from '../../activities/keys.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { startFederation } from '../../client/federation.js';
import { readVector } from '../../engine/federated/vector.js';
import { createWorkers } from '../../worker/workers.js';
import { FASHION, TRAIN_FILES, makeFixture, policyFromText, sha256, testPolicyText, type Fixture } from './fixture.js';
import { startStack, testAddress, uniqueId, type Stack } from './temporal.js';

export const CLIENTS = ['client-1', 'client-2', 'client-3'];

export class FederationBench {
  fx!: Fixture;
  stack!: Stack;
  native!: NativeConnection;
  private clients: Worker[] = [];
  private running: Promise<void>[] = [];

  async setup(): Promise<void> {
    this.fx = await makeFixture();
    await ensureDevKeys(this.fx.keys, CLIENTS);
    for (const f of TRAIN_FILES) await copyFile(join(FASHION, f), join(this.fx.dataset, f));
    this.stack = await startStack(this.fx);
    this.native = await NativeConnection.connect({ address: testAddress() });
  }

  async teardown(): Promise<void> {
    await this.stopClients();
    await this.native?.close();
    await this.stack?.stop();
  }

  /** In-process client workers for the given ids, each with its own key from the fixture. */
  async startClients(ids: string[]): Promise<void> {
    this.clients = await createWorkers({
      connection: this.native,
      namespace: 'default',
      queues: ids.map((id) => `client:${id}` as const),
      artifactsDir: this.fx.artifacts,
      releaseKeyPath: this.fx.key('release'),
      trust: this.fx.trust,
      clientKeyPath: (id) => this.fx.key(id),
      clientStateDir: join(this.fx.dir, 'federated'),
    });
    this.running = this.clients.map((w) => w.run());
  }

  async stopClients(): Promise<void> {
    for (const w of this.clients) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(this.running);
    this.clients = [];
  }

  /** A policy with a federated train block over the first `limit` training images, written to the policy source. */
  async policy(name: string, federated: string, limit = 3000): Promise<string> {
    const fx = this.fx;
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

  async start(policy: string, id = uniqueId('fedavg')) {
    return startFederation(this.stack.client, {
      workflowId: id,
      policyRef: policy,
      key: await loadPrivateKey(this.fx.key('cli')),
    });
  }

  async vectorOf(ref: string, count: number): Promise<Float32Array> {
    const store = new LocalArtifactStore(this.fx.artifacts);
    return readVector(await store.get(ref.startsWith('sha256:') ? ref : `sha256:${ref}`), count, ref);
  }
}

/** Every message in an error's cause chain, joined. */
export function causes(e: unknown): string {
  const out: string[] = [];
  let err = e as { message?: string; cause?: unknown } | undefined;
  while (err) {
    out.push(err.message ?? '');
    err = err.cause as typeof err;
  }
  return out.join(' | ');
}
