// `secmlops dev` (what `npm start` runs): the embedded stack on one machine, and the example pipeline on it.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { installQuietLogger } from '../worker/logger.js';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, relative } from 'node:path';
import { ensureDevKeys, loadPrivateKey } from '../activities/keys.js';
import { pipelineStatus } from '../client/pipelines.js';
import { startSigned } from '../client/start.js';
import { federationStatus, renderRounds, startFederation } from '../client/federation.js';
import { rolesOf, type Policy } from '../policy/index.js';
import { dataConverter } from '../worker/connection.js';
import { startDevServer } from '../worker/dev-server.js';
import { homePaths } from '../worker/paths.js';
import { tracingFromEnv } from '../worker/tracing.js';
import { createWorkers } from '../worker/workers.js';
import { trustFromEnv } from '../worker/trust.js';
import { TASK_QUEUE, type PipelineResult, type PipelineStatus } from '../workflows/messages.js';
import { loadPolicy } from './load-policy.js';
import { notable, renderAudit, renderStage, renderProgress, stageProgress } from './render.js';
import { localSubject } from './subject.js';
import { startConsole } from './console-command.js';

export interface DevOptions {
  policy: string;
  /** Runs the federated example instead: three client workers in-process, and a federation instead of a pipeline. */
  federated?: boolean;
  port: number;
  uiPort: number;
  consolePort: number;
}

export async function dev(opts: DevOptions): Promise<void> {
  // Workflow-bundle chatter would drown the stage lines; warnings and errors still show.
  installQuietLogger();
  const paths = homePaths();
  await mkdir(paths.home, { recursive: true });
  const clients = opts.federated ? ['client-1', 'client-2', 'client-3'] : [];
  const created = [...(await ensureDevKeys(paths.keys)), ...(await ensureDevKeys(paths.keys, clients))];
  if (created.length)
    console.log(`Created development keys in ${relative(process.cwd(), paths.keys)}: ${created.join(', ')}`);
  const policy = await loadPolicy(opts.policy);
  const dataset = policy.artifacts.dataset;
  if (dataset && !existsSync(dataset.root)) {
    throw new Error(
      `${policy.file}: artifacts.dataset.root: ${dataset.root} does not exist; on Debian install it with \`apt-get install dataset-fashion-mnist\``,
    );
  }

  let env: TestWorkflowEnvironment | undefined;
  let address = `localhost:${opts.port}`;
  if (await listening(opts.port)) {
    console.log(`A Temporal server already listens on ${address}; using it.`);
  } else {
    console.log(`Starting Temporal's dev server (state in ${relative(process.cwd(), paths.db)})…`);
    env = await startDevServer({
      dbFilename: paths.db,
      port: opts.port,
      uiPort: opts.uiPort,
      log: (l) => console.log(l),
    });
    address = env.address;
    console.log(`Temporal web UI: http://localhost:${opts.uiPort}`);
  }
  const native = await NativeConnection.connect({ address });
  // The dev stack trusts its own folder as policy source and the dev cli key for starts.
  const trust = trustFromEnv(process.env, { dev: true });
  // OTEL_* variables turn on traces of workflows and activities, as for `secmlops worker`, and of the console.
  const tracing = tracingFromEnv();
  const workers = await createWorkers({
    connection: native,
    namespace: 'default',
    queues: ['cpu', 'gpu', ...clients.map((id) => `client:${id}` as const)],
    artifactsDir: paths.artifacts,
    releaseKeyPath: paths.releaseKey,
    trust,
    tracing,
  });
  const running = workers.map((w) => w.run());
  console.log(`Workers polling task queues ${TASK_QUEUE} (CPU) and gpu (CPU fallback).`);
  const connection = await Connection.connect({ address });
  const client = new Client({
    connection,
    dataConverter: dataConverter(),
    ...(tracing ? { interceptors: tracing.clientInterceptors } : {}),
  });
  const consoleOptions = { port: opts.consolePort, host: '127.0.0.1', client, ...(tracing ? { tracing } : {}) };
  const web = await startConsole(consoleOptions).catch((e: Error) => {
    console.log(`The approvals console did not start: ${e.message}`);
    return undefined;
  });
  if (web)
    console.log(
      `Approvals console: ${web.url} — sign in with a token from \`npx secmlops token issue --person alice\``,
    );

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping workers and the dev server…');
    await web?.app.close();
    await shutdown(workers, running);
    await tracing?.shutdown();
    await connection.close();
    await native.close();
    await env?.teardown();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  if (opts.federated) {
    const f = policy.train?.federated;
    if (!f) throw new Error(`${policy.file} has no train.federated block`);
    const id = `secmlops-dev-${policy.name}-${Date.now().toString(36)}`;
    const key = await loadPrivateKey(join(paths.keys, 'cli.key'));
    const federation = await startFederation(client, { workflowId: id, policyRef: opts.policy, key });
    console.log(`Started federation ${id}: ${f.rounds} rounds on ${clients.join(', ')} (workers in this process).`);
    let shown = 0;
    const poll = setInterval(() => {
      void federationStatus(federation)
        .then((s) =>
          renderRounds(s.state?.rounds ?? [], f.rounds)
            .slice(shown)
            .forEach((l) => (shown++, console.log(l))),
        )
        .catch(() => undefined);
    }, 2000);
    const r = await federation.result().finally(() => clearInterval(poll));
    renderRounds(r.rounds, f.rounds)
      .slice(shown)
      .forEach((l) => console.log(l));
    console.log(`Global model: ${r.modelRef}`);
    return stop(0);
  }

  const workflowId = `secmlops-dev-${policy.name}`;
  // The dev stack's author is a placeholder nobody in the example policy is, so every approver may decide.
  const subject = localSubject(`local/${policy.name}`, 'local-dev');
  const { handle, attached } = await startSigned(client, {
    workflowId,
    subject,
    policyRef: opts.policy,
    key: await loadPrivateKey(join(paths.keys, 'cli.key')),
    attach: true,
  });
  console.log(
    attached ? `Pipeline ${workflowId} is already running; attaching to it.` : `Started pipeline ${workflowId}.`,
  );
  const result = await watch(client, workflowId, policy, () => handle.result());
  console.log(`\nPipeline ${result.state.toUpperCase()}${result.reason ? `: ${result.reason}` : ''}`);
  const attestation = result.stages.find((s) => s.name === 'release')?.artifacts.attestationPath;
  if (attestation)
    console.log(
      `Release attestation: ${relative(process.cwd(), attestation)}\n  check it: npx secmlops verify ${relative(process.cwd(), attestation)} --policy ${policy.file}`,
    );
  await stop(result.state === 'passed' ? 0 : 1);
}

/** Prints each stage as it changes, and at each approval the commands that give it. */
async function watch(
  client: Client,
  workflowId: string,
  policy: Policy,
  result: () => Promise<PipelineResult>,
): Promise<PipelineResult> {
  const printed = new Map<string, string>();
  let audits = 0;
  let done: PipelineResult | undefined;
  const finished = result().then((r) => (done = r));
  for (;;) {
    const final = done;
    const status = final ?? (await pipelineStatus(client, workflowId).catch(() => undefined));
    if (status) {
      for (const stage of status.stages) {
        let text = renderStage(stage).join('\n');
        if (stage.state === 'running' && !final)
          for (const p of await stageProgress(client, stage.workflowId)) text += `\n    ${renderProgress(p)}`;
        if (printed.get(stage.name) === text) continue;
        printed.set(stage.name, text);
        console.log(text);
        if (stage.state === 'waiting' && stage.approval)
          console.log(approvalHints(workflowId, stage.name, stage.approval.missingRoles, policy, status));
      }
      for (const a of status.audit.slice(audits).filter(notable)) console.log(`  audit: ${renderAudit(a)}`);
      audits = status.audit.length;
    }
    if (final) return final;
    await Promise.race([finished, new Promise((r) => setTimeout(r, 1000))]);
  }
}

function approvalHints(
  workflowId: string,
  stage: string,
  roles: string[],
  policy: Policy,
  status: PipelineStatus,
): string {
  const decided = new Set(status.audit.filter((a) => a.stage === stage && a.kind === 'decision').map((a) => a.person));
  const lines = [`    To approve, run one of (as a person holding ${roles.join(' or ')}):`];
  for (const person of policy.people) {
    if (decided.has(person.id) || !rolesOf(policy, person.id).some((r) => roles.includes(r))) continue;
    lines.push(
      `      npx secmlops approve ${workflowId} --stage ${stage} --as ${person.id} --key .secmlops/keys/cli.key --comment "looks good"`,
    );
  }
  return lines.join('\n');
}

async function shutdown(workers: Worker[], running: Promise<void>[]): Promise<void> {
  for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  await Promise.allSettled(running);
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
