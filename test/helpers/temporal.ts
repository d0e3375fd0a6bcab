// Clients and workers against the real dev server that global-setup started.
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { installQuietLogger } from '../../worker/logger.js';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Policy } from '../../policy/index.js';
import { createWorkers } from '../../worker/workers.js';
import { loadPrivateKey } from '../../activities/keys.js';
import { withRunningStage } from '../../client/pipelines.js';
import { startSigned } from '../../client/start.js';
import { sendDecision } from '../../client/decisions.js';
import type {
  DecisionAccepted,
  PipelineResult,
  PipelineStatus,
  StageState,
  Subject,
} from '../../workflows/messages.js';
import { policySource, writePolicy, type Fixture } from './fixture.js';
import type { GitHubCredentials } from '../../github/credentials.js';
import type { SlackCredentials } from '../../activities/slack.js';

export const AUTHOR = 'mia-ml';

export function testAddress(): string {
  const a = process.env.SECMLOPS_TEST_ADDRESS;
  if (!a)
    throw new Error(
      'SECMLOPS_TEST_ADDRESS is unset: run the tests through `npm test`, whose global setup starts the dev server',
    );
  return a;
}

export function workflowBundle(): { code: string } {
  return { code: readFileSync(process.env.SECMLOPS_TEST_BUNDLE!, 'utf8') };
}

export interface Stack {
  client: Client;
  workers: Worker[];
  stop: () => Promise<void>;
  /** A decision through the CLI's code path, signed with the fixture's cli key. */
  decide: (
    workflowId: string,
    stage: string,
    person: string,
    decision?: 'approve' | 'reject',
    comment?: string,
  ) => Promise<DecisionAccepted>;
}

/** A client and in-process CPU and gpu workers. */
export async function startStack(
  fx: Fixture,
  address = testAddress(),
  github?: GitHubCredentials,
  slack?: SlackCredentials,
  trust = fx.trust,
): Promise<Stack> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const native = await NativeConnection.connect({ address });
  const workers = await createWorkers({
    connection: native,
    namespace: 'default',
    queues: ['cpu', 'gpu'],
    artifactsDir: fx.artifacts,
    releaseKeyPath: fx.key('release'),
    trust,
    workflowBundle: workflowBundle(),
    github,
    slack,
  });
  const running = workers.map((w) => w.run());
  return {
    client,
    workers,
    decide: (workflowId, stage, person, decision = 'approve', comment = '') =>
      sendDecision(client, { workflowId, stage, person, decision, comment, keyPath: fx.key('cli') }),
    stop: async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(running);
      await native.close();
      await connection.close();
    },
  };
}

let counter = 0;
export function uniqueId(name: string): string {
  return `test-${name}-${Date.now().toString(36)}-${counter++}`;
}

export function subject(author = AUTHOR): Subject {
  return { repo: 'acme/models', pr: 7, headSha: 'a'.repeat(40), author };
}

/** Writes the policy into the fixture's policy source and starts a pipeline on it with a start signed by the cli key. */
export async function startPipeline(
  client: Client,
  policy: Policy,
  id: string,
  subj: Subject = subject(),
): Promise<WorkflowHandle> {
  const { fx } = policySource(policy);
  const policyRef = await writePolicy(policy, id);
  const claimed = {
    repo: subj.repo,
    headSha: subj.headSha,
    author: subj.author,
    ...(subj.pr !== undefined ? { pr: subj.pr } : {}),
    ...(subj.title ? { title: subj.title } : {}),
  };
  const { handle } = await startSigned(client, {
    workflowId: id,
    subject: claimed,
    policyRef,
    key: await loadPrivateKey(fx.key('cli')),
    ...(subj.url ? { url: subj.url } : {}),
  });
  return handle;
}

/** The pipeline's status with its running stage's progress, as every channel reads it (client/pipelines.ts). */
export async function status(handle: WorkflowHandle): Promise<PipelineStatus> {
  return withRunningStage(handle.client, await handle.query<PipelineStatus>('status'));
}

/** Polls the pipeline's status until a stage reaches one of the states. */
export async function waitForStage(
  handle: WorkflowHandle,
  stage: string,
  states: StageState[],
  timeoutMs = 60_000,
): Promise<PipelineStatus> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(handle);
    if (s.stages.find((x) => x.name === stage && states.includes(x.state))) return s;
    if (s.state !== 'running')
      throw new Error(`pipeline ended (${s.state}: ${s.reason}) before stage ${stage} became ${states.join('/')}`);
    if (Date.now() > until)
      throw new Error(
        `stage ${stage} did not become ${states.join('/')} within ${timeoutMs} ms: ${JSON.stringify(s.stages.map((x) => [x.name, x.state]))}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function result(handle: WorkflowHandle): Promise<PipelineResult> {
  return (await handle.result()) as PipelineResult;
}

// Worker lifecycle chatter at INFO would bury test output; warnings and errors still show.
installQuietLogger();

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
