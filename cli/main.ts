// The `secmlops` command. Every command that takes a policy validates it before it connects to anything.
import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { ensureDevKeys, loadPrivateKey } from '../activities/keys.js';
import { PolicyError, describeSubject, useEd25519Verifier } from '../policy/index.js';
import { verifyEd25519Native } from '../engine/io/native-ed25519.js';
import { connectClient, connectionConfigFromEnv } from '../worker/connection.js';
import { homePaths } from '../worker/paths.js';
import { DecisionRefused, sendDecision } from '../client/decisions.js';
import { pipelineStatus } from '../client/pipelines.js';
import { startSigned } from '../client/start.js';
import { loadPolicy, loadPolicyWithDigest } from './load-policy.js';
import { renderStatus, stageProgress, type ActivityProgress } from './render.js';
import { localSubject, pipelineId } from './subject.js';
import { verifyFile } from './verify.js';
import { addEngineCommands } from './engine-program.js';
import { addStudyCommands } from './study-program.js';
import { UsageError } from './usage-error.js';
import { CLIENT_ID } from '../policy/parse-federated.js';

const program = new Command('secmlops')
  .description('Security controls for every stage of an ML model’s life, as durable Temporal pipelines')
  .option('--address <host:port>', 'Temporal frontend (default: TEMPORAL_ADDRESS or localhost:7233)')
  .option('--namespace <ns>', 'Temporal namespace (default: TEMPORAL_NAMESPACE or default)')
  .showHelpAfterError();

const client = () => connectClient(connectionConfigFromEnv(program.opts()));
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};

program
  .command('dev')
  .description('the embedded stack (what `npm start` runs): dev server, CPU and gpu workers, and the example pipeline')
  .option('--policy <file>', 'policy to run (default: the example pipeline, or with --federated the FedAvg example)')
  .option('--federated', 'run federated training with three in-process client workers instead of a pipeline')
  .option('--port <n>', 'Temporal frontend port', int, 7233)
  .option('--ui-port <n>', 'Temporal web UI port', int, 8233)
  .option('--console-port <n>', 'approvals console port', int, 8080)
  .action(async (o: { policy?: string; federated?: boolean; port: number; uiPort: number; consolePort: number }) => {
    const { dev } = await import('./dev.js');
    const example = o.federated ? 'federated.yaml' : 'secmlops.yaml';
    await dev({ ...o, policy: o.policy ?? `examples/fashion-mnist/${example}` });
  });

program
  .command('worker')
  .description('run workers for the CPU and/or gpu task queues until SIGINT or SIGTERM')
  .option('--queues <list>', 'comma-separated: cpu, gpu', 'cpu,gpu')
  .action(async (o: { queues: string }) => {
    const { runWorkers } = await import('./worker-command.js');
    await runWorkers(o.queues, connectionConfigFromEnv(program.opts()));
  });

program
  .command('bundle-workflows')
  .description('bundle the workflow code ahead of time (container images set SECMLOPS_WORKFLOW_BUNDLE to it)')
  .argument('<out>', 'output file')
  .option(
    '--tracing',
    'include the OpenTelemetry workflow interceptors (workers then trace workflows when OTEL_* asks)',
  )
  .action(async (out: string, o: { tracing?: boolean }) => {
    const { bundleWorkflowCode } = await import('@temporalio/worker');
    const { WORKFLOWS_PATH, WORKFLOW_PRELOADS } = await import('../worker/workers.js');
    const { WORKFLOW_TRACING_MODULE } = await import('../worker/tracing.js');
    const { writeFile } = await import('node:fs/promises');
    const { code } = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      preloadModules: WORKFLOW_PRELOADS,
      ...(o.tracing ? { workflowInterceptorModules: [WORKFLOW_TRACING_MODULE] } : {}),
    });
    await writeFile(out, code);
    console.log(`wrote ${out} (${(code.length / 1e6).toFixed(1)} MB)`);
  });

program
  .command('temporal-cli')
  .description('print the path of the Temporal CLI, installing it into .secmlops/tools if it is missing')
  .action(async () => {
    const { ensureTemporalCli } = await import('../worker/temporal-cli.js');
    const { path, attempts } = await ensureTemporalCli({ log: (l) => console.error(l) });
    if (!path)
      throw new Error(
        `could not install the Temporal CLI:\n${attempts.map((a) => `  - ${a.way}: ${a.error}`).join('\n')}\nThe dev server will fall back to the Temporal SDK's own download.`,
      );
    console.log(path);
  });

program
  .command('check')
  .description('validate a policy file and print what it says')
  .argument('<policy>', 'secmlops.yaml')
  .action(async (file: string) => {
    const p = await loadPolicy(file);
    console.log(
      `${p.file}: valid. Stages: ${p.stages.map((s) => s.name + (s.approval ? ` (approval: ${s.approval.roles.join(' + ')})` : '')).join(' → ')}; ${p.people.length} people; ${p.gates.length} gates.`,
    );
  });

program
  .command('run')
  .description(
    'start a pipeline for a change, signed with a CLI start key the workers pin (re-running for the same change attaches to its pipeline)',
  )
  .requiredOption(
    '--policy <file>',
    'secmlops.yaml, as a path the workers resolve inside their policy source (SECMLOPS_POLICY_ROOT)',
  )
  .requiredOption('--author <login>', 'GitHub login of the change’s author: never allowed to approve it')
  .option('--repo <owner/name>', 'repository', 'local/repo')
  .option('--pr <n>', 'pull request number', int)
  .option('--sha <sha>', 'head commit (default: git HEAD)')
  .option('--key <file>', 'the CLI start key (PEM) whose public key the workers pin', join(homePaths().keys, 'cli.key'))
  .option('--id <workflowId>', 'workflow ID (default: derived from the repository and PR or commit)')
  .option('--wait', 'wait for the verdict; exit non-zero when it fails')
  .action(
    async (o: {
      policy: string;
      repo: string;
      pr?: number;
      sha?: string;
      author: string;
      key: string;
      id?: string;
      wait?: boolean;
    }) => {
      const policy = await loadPolicy(o.policy);
      const subject = {
        ...localSubject(o.repo, o.author),
        ...(o.sha ? { headSha: o.sha } : {}),
        ...(o.pr !== undefined ? { pr: o.pr } : {}),
      };
      const workflowId = o.id ?? pipelineId(policy.name, subject);
      const key = await loadPrivateKey(o.key);
      const { handle, attached } = await startSigned(await client(), {
        workflowId,
        subject,
        policyRef: o.policy,
        key,
        attach: true,
      });
      console.log(
        `Pipeline ${workflowId} ${attached ? '(already running; attached)' : 'started'}. Follow it with: npx secmlops status ${workflowId}`,
      );
      if (o.wait) {
        const r = await handle.result();
        console.log(renderStatus(r));
        process.exitCode = r.state === 'passed' ? 0 : 1;
      }
    },
  );

program
  .command('status')
  .description('a pipeline’s stages, pending approvals, progress and audit trail')
  .argument('<workflowId>')
  .option('--json', 'print the status as JSON (an audit trail `verify --policy` can check)')
  .action(async (id: string, o: { json?: boolean }) => {
    const c = await client();
    const status = await pipelineStatus(c, id);
    if (o.json) return console.log(JSON.stringify(status, null, 2));
    const progress = new Map<string, ActivityProgress[]>();
    for (const s of status.stages)
      if (s.state === 'running' && s.name !== 'monitor') progress.set(s.name, await stageProgress(c, s.workflowId));
    console.log(renderStatus(status, progress));
    if (status.stages.some((s) => s.name === 'monitor' && s.state === 'running')) {
      const { monitorStatus } = await import('../client/incidents.js');
      const { renderMonitor } = await import('./render-monitor.js');
      const m = await monitorStatus(c, id).catch((e: Error) => e);
      console.log(m instanceof Error ? `monitor: cannot be read: ${m.message}` : renderMonitor(m));
    }
  });

program
  .command('list')
  .description('pipelines known to the server')
  .action(async () => {
    const c = await client();
    for await (const w of c.workflow.list({ query: `WorkflowType = 'secmlopsPipeline'` })) {
      console.log(`${w.workflowId.padEnd(48)} ${w.status.name.padEnd(11)} ${w.startTime.toISOString()}`);
    }
  });

for (const decision of ['approve', 'reject'] as const) {
  program
    .command(decision)
    .description(`${decision} a stage that is waiting, signed with the cli channel's key`)
    .argument('<workflowId>', 'the pipeline')
    .requiredOption('--stage <stage>', 'plan, data or release')
    .requiredOption('--as <person>', 'person id from the policy')
    .requiredOption('--key <file>', 'the cli channel’s Ed25519 private key (PEM)')
    .option('--comment <text>', decision === 'reject' ? 'the reason (required)' : 'a comment for the audit trail', '')
    .option('--policy <file>', 'validate this policy first')
    .action(async (id: string, o: { stage: string; as: string; key: string; comment: string; policy?: string }) => {
      if (o.policy) await loadPolicy(o.policy);
      if (decision === 'reject' && !o.comment.trim())
        throw new DecisionRefused('a rejection needs a reason: --comment "…"');
      const key = await loadPrivateKey(o.key);
      const c = await client();
      // The decision is signed for the change shown here (its subject digest), not for whatever runs later.
      const shown = await pipelineStatus(c, id).catch(() => undefined);
      if (shown?.subjectDigest)
        console.log(`Deciding on ${describeSubject(shown.subject)} (subject ${shown.subjectDigest.slice(0, 12)}…)`);
      const r = await sendDecision(c, {
        workflowId: id,
        stage: o.stage,
        person: o.as,
        decision,
        comment: o.comment,
        keyPath: o.key,
        key,
        subjectDigest: shown?.subjectDigest ?? '',
      });
      const state = r.outcome
        ? `stage ${r.stage} ${r.outcome}`
        : `stage ${r.stage} still needs ${r.missingRoles.join(' + ') || 'more approvers'}`;
      console.log(`Accepted: ${o.as} ${decision === 'approve' ? 'approved' : 'rejected'} ${r.stage}; ${state}.`);
    });
}

program
  .command('incident')
  .description('resolve a monitor incident (the monitor stage’s role, R8 by default): roll back, retrain or dismiss')
  .argument('<pipelineId>', 'the pipeline whose monitor opened the incident')
  .argument('<incident>', 'the incident number', int)
  .requiredOption('--as <person>', 'person id from the policy')
  .requiredOption('--key <file>', 'the cli channel’s Ed25519 private key (PEM)')
  .option('--rollback <attestation>', 'serve the earlier release with this attestation (sha256:<digest>)')
  .option('--retrain', 'retrain: start a new pipeline for the same change')
  .option('--dismiss', 'a false alarm: close the incident without action (needs --comment)')
  .option('--comment <text>', 'for the audit trail', '')
  .action(
    async (
      id: string,
      n: number,
      o: { as: string; key: string; rollback?: string; retrain?: boolean; dismiss?: boolean; comment: string },
    ) => {
      const chosen = [o.rollback !== undefined, !!o.retrain, !!o.dismiss].filter(Boolean).length;
      if (chosen !== 1) throw new UsageError('choose one of --rollback <attestation>, --retrain or --dismiss');
      if (o.dismiss && !o.comment.trim()) throw new UsageError('a dismissal needs a reason: --comment "…"');
      const { sendIncidentDecision } = await import('../client/incidents.js');
      const r = await sendIncidentDecision(await client(), {
        pipelineId: id,
        incident: n,
        person: o.as,
        keyPath: o.key,
        comment: o.comment,
        decision: o.dismiss ? 'reject' : 'approve',
        ...(o.rollback ? { resolution: { action: 'rollback' as const, attestation: o.rollback } } : {}),
        ...(o.retrain ? { resolution: { action: 'retrain' as const } } : {}),
      });
      console.log(
        `Accepted: incident ${r.incident} ${r.outcome}; ` +
          `serving sha256:${r.serving.modelSha256} (${r.serving.attestation}).`,
      );
    },
  );

program
  .command('verify')
  .description(
    're-check a release attestation (DSSE envelope) or an exported audit trail: evidence, decisions, chain, approval rules',
  )
  .argument('<file>', 'a file, or sha256:<digest> in the artifact store')
  .option('--key <pub>', 'trusted release public key (base64 raw or PEM)')
  .option(
    '--policy <file>',
    'the policy the run used: its release and channel keys are trusted, and its digest must be the attested one',
  )
  .option(
    '--allow-legacy',
    'accept attestations and trails from before signed evidence and the audit chain, saying what was not checked',
  )
  .action(async (file: string, o: { key?: string; policy?: string; allowLegacy?: boolean }) => {
    const policy = o.policy ? await loadPolicyWithDigest(o.policy) : undefined;
    const r = await verifyFile(file, {
      keyPath: o.key,
      policy,
      artifactsDir: homePaths().artifacts,
      allowLegacy: o.allowLegacy,
    });
    if (r.kind === 'attestation') {
      console.log(`✔ envelope signature verifies; pipeline ${r.pipeline}`);
      for (const s of r.subjects) console.log(`  subject ${s.name} sha256:${s.sha256}`);
    }
    for (const d of r.decisions)
      console.log(
        `  ${d.valid === true ? '✔' : d.valid === false ? '✘' : '?'} ${d.stage} ${d.decision} by ${d.person} via ${d.channel}${d.reason ? ` — ${d.reason}` : ''}`,
      );
    for (const p of r.problems) console.log(`  ✘ ${p}`);
    for (const n of r.notChecked) console.log(`  ? not checked: ${n}`);
    if (!r.ok)
      throw new Error(`verification failed: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`);
    console.log(r.notChecked.length ? 'verified, with the gaps listed above' : 'verified');
  });

addEngineCommands(program, int);
addStudyCommands(program, client);

program
  .command('serve')
  .description('serve one released model: only from an attestation that verifies, every input validated')
  .option(
    '--attestation <ref>',
    'the release attestation: a file, or sha256:<digest> in the artifact store (default with --monitor: what it serves)',
  )
  .option('--key <pub>', 'trusted release public key (base64 raw or PEM)')
  .option('--policy <file>', 'a policy whose release.publicKey is trusted (and whose evaluate.range bounds inputs)')
  .option(
    '--artifacts <dir|s3://bucket/prefix>',
    'the artifact store holding the model (default: $SECMLOPS_ARTIFACTS, else $SECMLOPS_HOME/artifacts)',
  )
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <n>', 'port', int, 8081)
  .option('--max-batch <n>', 'most inputs per request', int, 64)
  .option('--telemetry <dir>', 'where request summaries go for the monitor (default: $SECMLOPS_HOME/telemetry)')
  .option('--integrity-every <s>', 'seconds between re-hashes of the served model file (0: never)', int, 10)
  .option(
    '--monitor <pipelineId>',
    'follow that pipeline’s monitor stage: switch on a checked rollback (needs --policy)',
  )
  .option('--poll <s>', 'seconds between looks at the monitor', int, 5)
  .action(async (o: Omit<Parameters<typeof import('./serve-command.js').serveCommand>[0], 'client'>) => {
    const { serveCommand } = await import('./serve-command.js');
    await serveCommand({ ...o, ...(o.monitor ? { client: await client() } : {}) });
  });

program
  .command('console')
  .description('serve the approvals console and the Slack interactivity endpoint')
  .option('--port <n>', 'port', int, 8080)
  .option('--host <h>', 'interface to listen on', '127.0.0.1')
  .action(async (o: { port: number; host: string }) => {
    const { startConsole } = await import('./console-command.js');
    const { url } = await startConsole(o);
    console.log(`Approvals console on ${url} (Slack interactivity: ${url}/slack/interactivity)`);
  });

program
  .command('token')
  .description('console sign-in tokens')
  .command('issue')
  .description('issue a console sign-in token for a person, signed with the operator key')
  .requiredOption('--person <id>', 'the person (an id from the policy’s people)')
  .option('--ttl <duration>', 'how long it is valid (e.g. 8h, 7d)', '12h')
  .option('--key <file>', 'the operator’s private key (default .secmlops/keys/token.key)')
  .action(async (o: { person: string; ttl: string; key?: string }) => {
    const { issueToken } = await import('../console/tokens.js');
    const { parseDuration } = await import('../policy/index.js');
    const ttl = parseDuration(o.ttl);
    if (ttl === undefined) throw new Error(`--ttl must be a duration such as 8h or 7d, not "${o.ttl}"`);
    console.log(issueToken(o.person, ttl, await loadPrivateKey(o.key ?? join(homePaths().keys, 'token.key'))));
  });

program
  .command('keys')
  .description('development keys')
  .command('init')
  .description(
    'create any missing Ed25519 key pairs (cli, console, slack, github, release, token) under .secmlops/keys',
  )
  .option('--client <ids>', 'also a federated client key pair per id (comma-separated, e.g. client-1,client-2)')
  .action(async (o: { client?: string }) => {
    const dir = homePaths().keys;
    const clients = (o.client ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    for (const c of clients)
      if (!CLIENT_ID.test(c) || c === 'cpu' || c === 'gpu')
        throw new UsageError(`"${c}" is not a client id such as client-1`);
    const created = [...(await ensureDevKeys(dir)), ...(await ensureDevKeys(dir, clients))];
    console.log(created.length ? `created ${created.join(', ')} in ${dir}` : `all keys already exist in ${dir}`);
  });

try {
  // Signatures checked in this process (verify, serve, the workers it starts) go through OpenSSL.
  useEd25519Verifier(verifyEd25519Native);
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as Error;
  const known = err instanceof PolicyError || err instanceof DecisionRefused;
  console.error(`secmlops: ${known ? '' : 'error: '}${err.message}`);
  if (process.env.SECMLOPS_DEBUG) console.error(err.stack);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
