// The CPU worker (workflows and light activities) and the `gpu` task-queue worker (compute-heavy activities).
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import {
  createClientActivities,
  createCpuActivities,
  createGpuActivities,
  type ActivityConfig,
} from '../activities/index.js';
import { loadPrivateKey } from '../activities/keys.js';
import { secmlopsHome } from './paths.js';
import { GPU_TASK_QUEUE, TASK_QUEUE } from '../workflows/messages.js';
import { dataConverter } from './connection.js';
import { credentialsFromEnv } from '../github/credentials.js';
import { slackFromEnv } from '../activities/slack.js';
import { trustFromEnv, type TrustConfig } from './trust.js';
import { githubStartResolver } from '../github/start.js';
import { discardedWorkflowSpans, type Tracing } from './tracing.js';
import { readFileSync } from 'node:fs';
import { useEd25519Verifier } from '../policy/index.js';
import { verifyEd25519Native } from '../engine/io/native-ed25519.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * Modules the workflow context evaluates once, before any workflow, instead of at every workflow's start (module
 * state is otherwise fresh per workflow): Ed25519 arithmetic for verifying decisions. They hold no per-workflow
 * state; their caches (noble's point tables) memoise pure functions, so sharing them cannot change what a workflow
 * computes. The SDK deep-freezes them once loaded. Every bundle of ours is built with this list.
 */
export const WORKFLOW_PRELOADS = [
  '@noble/hashes/sha2.js',
  '@noble/curves/utils.js',
  '@noble/curves/ed25519.js',
  fileURLToPath(new URL('../policy/ed25519.ts', import.meta.url)),
];

/** cpu and gpu, or a federated client's own queue (its id, as the policy's train.federated.clients name it). */
export type Queue = 'cpu' | 'gpu' | `client:${string}`;

export interface WorkerSetup extends Omit<ActivityConfig, 'trust'> {
  /** What the workers trust; from the environment (SECMLOPS_*; see README) unless given. */
  trust?: TrustConfig;
  connection: NativeConnection;
  namespace: string;
  queues: Queue[];
  /** OpenTelemetry tracing (worker/tracing.ts): traced activities, and workflows when their bundle carries it. */
  tracing?: Tracing;
  /** A prebuilt workflow bundle (tests share one); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Federated clients' keys (default <home>/keys/<id>.key) and where each keeps a round's update between phases. */
  clientKeyPath?: (id: string) => string;
  clientStateDir?: string;
  identity?: string;
}

/** Whether a prebuilt bundle carries the OpenTelemetry workflow interceptors (its code names their module). */
function bundleTraces(bundle: { code: string } | { codePath: string }): boolean {
  const code = 'code' in bundle ? bundle.code : readFileSync(bundle.codePath, 'utf8');
  return code.includes('interceptors-opentelemetry');
}

export async function createWorkers(setup: WorkerSetup): Promise<Worker[]> {
  // Activities check signatures through OpenSSL; workflow code keeps its own pure-JavaScript verifier.
  useEd25519Verifier(verifyEd25519Native);
  // GitHub credentials come from the worker's environment unless given (SECMLOPS_GITHUB_*; see README).
  const trust = setup.trust ?? trustFromEnv();
  const github = setup.github ?? credentialsFromEnv();
  const config: ActivityConfig = {
    ...setup,
    trust,
    github,
    githubStarts: githubStartResolver(trust, github),
    slack: setup.slack ?? slackFromEnv(),
  };
  const common: Partial<WorkerOptions> = {
    connection: setup.connection,
    namespace: setup.namespace,
    dataConverter: dataConverter(),
    ...(setup.identity ? { identity: setup.identity } : {}),
    // Progress shows in `secmlops status` from heartbeats, and a crashed worker's retry resumes from the latest one.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: '10s',
    ...setup.tracing?.workerOptions,
  };
  // A bundle built ahead of time (SECMLOPS_WORKFLOW_BUNDLE, e.g. in a container image) saves bundling at every start.
  const prebuilt = process.env.SECMLOPS_WORKFLOW_BUNDLE;
  const bundle = setup.workflowBundle ?? (prebuilt ? { codePath: prebuilt } : undefined);
  const traced = bundle ? bundleTraces(bundle) : false;
  if (setup.tracing && bundle && !traced)
    console.warn(
      'secmlops worker: tracing activities only: the prebuilt workflow bundle was built without tracing ' +
        '(secmlops bundle-workflows OUT --tracing)',
    );
  if (traced && !setup.tracing) Object.assign(common, discardedWorkflowSpans());
  const workers: Worker[] = [];
  if (setup.queues.includes('cpu')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: TASK_QUEUE,
        ...(bundle
          ? { workflowBundle: bundle }
          : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { preloadModules: WORKFLOW_PRELOADS } }),
        activities: createCpuActivities(config),
      }),
    );
  }
  if (setup.queues.includes('gpu')) {
    // Compute-heavy activities. The engine uses the CUDA execution provider when SECMLOPS_EXECUTION_PROVIDER=cuda;
    // without it (and on these machines) they run on the CPU.
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: GPU_TASK_QUEUE,
        activities: createGpuActivities(config),
      }),
    );
  }
  for (const q of setup.queues) {
    if (!q.startsWith('client:')) continue;
    const id = q.slice('client:'.length);
    const keyPath = setup.clientKeyPath?.(id) ?? join(secmlopsHome(), 'keys', `${id}.key`);
    let key: Promise<KeyObject> | undefined;
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: id,
        activities: createClientActivities({
          artifactsDir: setup.artifactsDir,
          trust,
          client: {
            id,
            // Loaded on first use; a client without its key refuses every round by name.
            key: () =>
              (key ??= loadPrivateKey(keyPath)).catch((e: Error) => {
                key = undefined;
                throw ApplicationFailure.nonRetryable(`${id}'s signing key: ${e.message}`, 'FederatedPolicy');
              }),
            stateDir: setup.clientStateDir ?? join(secmlopsHome(), 'federated'),
          },
        }),
      }),
    );
  }
  return workers;
}
