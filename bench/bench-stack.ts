// A dev server, one process with a cpu-queue and a gpu-queue worker, and a client, for the benchmarks that run
// pipelines. Policies are written into the stack's policy source and started by reference with the cli key.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { ensureDevKeys, loadPrivateKey } from '../activities/keys.js';
import { startSigned } from '../client/start.js';
import { parsePolicy, type Policy } from '../policy/index.js';
import { startDevServer } from '../worker/dev-server.js';
import { installQuietLogger } from '../worker/logger.js';
import { createWorkers } from '../worker/workers.js';
import type { PipelineResult } from '../workflows/messages.js';

export interface BenchStack {
  dir: string;
  /** The cli key: signs starts and decisions. */
  key: KeyObject;
  client: Client;
  /** Writes `<name>.yaml` into the policy source; returns it parsed and its reference. */
  writePolicy(name: string, text: string): Promise<{ policy: Policy; ref: string }>;
  /** Starts a pipeline on a policy reference, signed with the cli key. */
  start(id: string, ref: string): Promise<{ result(): Promise<PipelineResult> }>;
  stop(): Promise<void>;
}

/** `clients`: federated client ids, each a worker on its own queue with its own key in the stack's folder. */
export async function startBenchStack(opts: { clients?: string[] } = {}): Promise<BenchStack> {
  installQuietLogger('ERROR');
  // BENCH_DIR reuses a folder (keys, artifacts, the experiment's model cache) from an earlier run.
  const dir = process.env.BENCH_DIR ?? (await mkdtemp(join(tmpdir(), 'secmlops-bench-')));
  await ensureDevKeys(join(dir, 'keys'));
  await ensureDevKeys(join(dir, 'keys'), opts.clients ?? []);
  const key = await loadPrivateKey(join(dir, 'keys', 'cli.key'));
  const env = await startDevServer({});
  const native = await NativeConnection.connect({ address: env.address });
  const workers = await createWorkers({
    connection: native,
    namespace: 'default',
    queues: ['cpu', 'gpu', ...(opts.clients ?? []).map((id) => `client:${id}` as const)],
    clientKeyPath: (id) => join(dir, 'keys', `${id}.key`),
    clientStateDir: join(dir, 'federated'),
    artifactsDir: join(dir, 'artifacts'),
    releaseKeyPath: join(dir, 'keys', 'release.key'),
    trust: {
      evidenceKeyPath: join(dir, 'keys', 'evidence.key'),
      policyRoot: dir,
      startKeys: [readFileSync(join(dir, 'keys', 'cli.pub'), 'utf8').trim()],
      githubChannelKeyPath: join(dir, 'keys', 'github.key'),
      stateStore: join(dir, 'state', 'worker.sqlite'),
    },
  });
  const running = workers.map((w) => w.run());
  const connection = await Connection.connect({ address: env.address });
  const client = new Client({ connection });
  return {
    dir,
    key,
    client,
    async writePolicy(name, text) {
      await writeFile(join(dir, `${name}.yaml`), text);
      const readKeyFile = (p: string) => readFileSync(join(dir, p), 'utf8');
      return { policy: parsePolicy(text, { file: `${name}.yaml`, readKeyFile }), ref: `${name}.yaml` };
    },
    async start(id, ref) {
      const { handle } = await startSigned(client, {
        workflowId: id,
        subject: { repo: 'bench/repo', headSha: 'b'.repeat(40), author: 'nobody' },
        policyRef: ref,
        key,
      });
      return { result: () => handle.result() };
    },
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.allSettled(running);
      await connection.close();
      await native.close();
      await env.teardown();
    },
  };
}
