// The pipeline: one child workflow per stage the policy lists, in order; the first stage that does not pass ends it.
// Versioning: runs wait for approvals for days, so a change to this code that alters the commands it issues
// must be guarded with patched('<change-id>') and the histories under test/histories/ must keep replaying.
//
// Trust (runs since TRUSTED_PIPELINE): the pipeline is started with a start proof and a policy *reference*; a worker
// resolves both (resolveStart) and signs what it found. Each stage's own result is kept. A running stage's progress
// is read by querying the run the status names (client/pipelines.ts); stage-update Signals, which stages of older
// runs send, are dropped and never reach the status, a gate, the verdict or the release signer.
import {
  CancellationScope,
  ParentClosePolicy,
  executeChild,
  startChild,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { CpuActivities } from '../activities/index.js';
import type { Evidence, PipelineInput, Policy, StageName } from '../policy/index.js';
import { entryDigest, genesisDigest, appendEntry, bounded } from '../policy/audit.js';
import {
  TASK_QUEUE,
  policyQuery,
  stageUpdateSignal,
  statusQuery,
  stageWorkflowId,
  type AuditEntry,
  type PipelineResult,
  type PipelineStatus,
  type StageResult,
  type Subject,
} from './messages.js';
import { dataStage, evaluateStage, planStage, releaseStage, trainStage } from './stages.js';
import { TRUSTED_PIPELINE, causeMessage } from './swimlane.js';
import { secmlopsMonitor } from './monitor.js';
import { pendingStage, sanitisedSplit } from './stage-reports.js';

const github = proxyActivities<CpuActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '2m',
  retry: { initialInterval: '5s', maximumInterval: '2m', maximumAttempts: 10 },
});

const starter = proxyActivities<CpuActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '2m',
  retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 5 },
});

/**
 * Started as secmlopsPipeline({ start, url }). Histories recorded before the trust boundary were started as
 * secmlopsPipeline(subject, policy) and replay that way; a new run given a policy body is refused.
 */
export async function secmlopsPipeline(input: PipelineInput | Subject, legacyPolicy?: Policy): Promise<PipelineResult> {
  if (!patched(TRUSTED_PIPELINE)) return legacyPipeline(input as Subject, legacyPolicy as Policy);
  return trustedPipeline(input as PipelineInput, legacyPolicy !== undefined);
}

async function trustedPipeline(input: PipelineInput, policyGiven: boolean): Promise<PipelineResult> {
  const pipelineId = workflowInfo().workflowId;
  const status: PipelineStatus = {
    workflowId: pipelineId,
    policyName: '',
    subject: { repo: '', headSha: '', author: '' },
    state: 'running',
    stages: [],
    audit: [],
  };
  const resolvedPolicy: { current?: Policy } = {};
  const trail: AuditEntry[] = [];
  setHandler(statusQuery, () => status);
  setHandler(policyQuery, () => {
    if (!resolvedPolicy.current) throw new Error('the pipeline has not resolved its policy yet');
    return resolvedPolicy.current;
  });
  // Stage-update Signals are dropped: a running stage's progress is read by querying the run this status names
  // (client/pipelines.ts), and stages started here send none. Anyone who can reach the namespace can send one, so
  // none is believed, not even for display; the handler is kept so that such Signals are not buffered.
  setHandler(stageUpdateSignal, () => undefined);

  const fail = (reason: string): PipelineResult => {
    status.state = 'failed';
    status.reason = reason;
    return status as PipelineResult;
  };
  if (policyGiven || (input as { policy?: unknown })?.policy !== undefined) {
    return fail(
      'the start was refused: a policy body from the client is refused; start the pipeline with a policy reference the workers resolve',
    );
  }
  let resolved;
  try {
    resolved = await starter.resolveStart(input);
  } catch (e) {
    return fail(`the start was refused: ${causeMessage(e)}`);
  }
  const policy = resolved.policy;
  resolvedPolicy.current = policy;
  const url = bounded(input.url, 500);
  status.policyName = policy.name;
  status.subject = url ? { ...resolved.subject, url } : resolved.subject;
  status.subjectDigest = resolved.subjectDigest;
  status.policyDigest = resolved.policyDigest;
  status.stages = policy.stages.map((s) => pendingStage(s.name, stageWorkflowId(pipelineId, s.name)));
  let head = appendEntry(trail, genesisDigest(pipelineId), {
    at: now(),
    stage: 'pipeline',
    kind: 'start',
    roles: [],
    subject: resolved.subject,
    subjectDigest: resolved.subjectDigest,
    reason: `started through ${resolved.evidence.body.payload.authenticatedBy.channel}; policy ${resolved.policyDigest.slice(0, 12)}…`,
  });
  status.audit = [...trail];

  /** Each finished stage's signed evidence, in order: the release dossier and a GitHub pass are built from it. */
  const evidence: { name: StageName; evidence: Evidence[] }[] = [];
  /**
   * The monitor watches the release from the stages' own results (never a Signal): the attestation the release
   * stage stored, and the model and drift reference the evaluation evidence signed. It outlives the pipeline, whose
   * verdict it does not hold. Returns why it could not start.
   */
  const startMonitor = async (): Promise<string | undefined> => {
    const i = status.stages.findIndex((s) => s.name === 'monitor');
    const attestation = status.stages.find((s) => s.name === 'release')?.artifacts.attestation;
    const evaluated = evidence
      .find((s) => s.name === 'evaluate')
      ?.evidence.find((e) => e.body.kind === 'evaluation') as Evidence<'evaluation'> | undefined;
    const reference = evaluated?.body.payload.reference;
    const modelSha256 = evaluated?.body.payload.modelSha256;
    if (!attestation || !reference || !modelSha256)
      return 'the release left no attestation, or the evaluation no drift reference, to monitor';
    const workflowId = stageWorkflowId(pipelineId, 'monitor');
    try {
      await startChild(secmlopsMonitor, {
        workflowId,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [
          {
            pipelineId,
            policy,
            policyDigest: resolved.policyDigest,
            start: resolved.evidence,
            release: { attestation, modelSha256 },
            reference,
          },
        ],
      });
    } catch (e) {
      // An earlier run's monitor for this pipeline ID still runs (or something else holds the ID).
      if (isCancellation(e)) throw e;
      const why = causeMessage(e);
      return `the monitor ${workflowId} could not start (${why}); terminate the earlier monitor and run again`;
    }
    status.stages[i] = { ...status.stages[i], state: 'running', task: 'watching the served model', startedAt: now() };
    return undefined;
  };
  const report = async (verdict: 'running' | 'passed' | 'failed' | 'cancelled') => {
    if (resolved.subject.source !== 'github') return;
    try {
      const dossier = {
        pipelineId,
        start: resolved.evidence,
        stages: evidence.filter((s) => s.name !== 'release'),
        audit: [...trail],
      };
      await CancellationScope.nonCancellable(() =>
        github.reportToGitHub({ status, verdict, runId: workflowInfo().runId, start: resolved.evidence, dossier }),
      );
      status.github = { reported: true };
    } catch (e) {
      status.github = { reported: false, error: causeMessage(e) };
    }
  };
  // The pending status comes from the worker too: the CI job then needs no permission to write statuses.
  await report('running');
  if (status.github?.reported === false)
    status.github = { reported: false, error: `pending status: ${status.github.error ?? ''}` };
  try {
    for (const stage of policy.stages) {
      if (stage.name === 'monitor') {
        const why = await startMonitor();
        if (why) fail(`stage monitor failed: ${why}`);
        break;
      }
      const trained = evidence.find((s) => s.name === 'train')?.evidence.find((e) => e.body.kind === 'training');
      const modelRef = trained ? `sha256:${(trained as Evidence<'training'>).body.payload.modelSha256}` : undefined;
      // The sanitised training split, as the data stage's own signed result names it (never from a Signal).
      const cleaned = evidence.find((s) => s.name === 'data')?.evidence.find((e) => e.body.kind === 'sanitisation');
      const sanitised = sanitisedSplit(cleaned as Evidence<'sanitisation'> | undefined);
      const common = {
        pipelineId,
        subject: resolved.subject,
        subjectDigest: resolved.subjectDigest,
        policy,
        policyDigest: resolved.policyDigest,
        stage,
        chainHead: head,
        start: resolved.evidence,
        ...(modelRef ? { modelRef } : {}),
        ...(sanitised ? { sanitised } : {}),
      };
      const options = { workflowId: stageWorkflowId(pipelineId, stage.name) };
      const i = status.stages.findIndex((s) => s.name === stage.name);
      // The same StartChildWorkflowExecution command as executeChild; the handle names the run, which the status
      // shows while the stage runs so that readers query its progress from that run and no other.
      const child =
        stage.name === 'release'
          ? await startChild(releaseStage, {
              ...options,
              args: [{ ...common, progress: 'query', audit: [...trail], evidence: [...evidence] }],
            })
          : await startChild(STAGES[stage.name], { ...options, args: [{ ...common, progress: 'query' }] });
      status.stages[i] = { ...status.stages[i], state: 'running', runId: child.firstExecutionRunId };
      const result = await child.result();
      status.stages[i] = { ...result.status, workflowId: options.workflowId };
      trail.push(...result.audit);
      if (result.audit.length) head = entryDigest(result.audit[result.audit.length - 1]);
      evidence.push({ name: stage.name, evidence: result.evidence ?? [] });
      status.audit = [...trail];
      if (result.status.state !== 'passed') {
        fail(`stage ${stage.name} ${result.status.state}: ${result.status.error ?? 'no reason recorded'}`);
        break;
      }
    }
    if (status.state === 'running') status.state = 'passed';
  } catch (e) {
    if (!isCancellation(e)) throw e;
    fail('the pipeline was cancelled');
    appendEntry(trail, head, {
      at: now(),
      stage: 'pipeline',
      kind: 'end',
      roles: [],
      state: 'cancelled',
      reason: status.reason,
    });
    status.audit = [...trail];
    await report('cancelled');
    throw e;
  }
  appendEntry(trail, head, {
    at: now(),
    stage: 'pipeline',
    kind: 'end',
    roles: [],
    state: status.state,
    ...(status.reason ? { reason: status.reason } : {}),
  });
  status.audit = [...trail];
  await report(status.state === 'passed' ? 'passed' : 'failed');
  return status as PipelineResult;
}

/** The pipeline as it ran before the trust boundary, kept so that the histories recorded then still replay. */
async function legacyPipeline(subject: Subject, policy: Policy): Promise<PipelineResult> {
  const pipelineId = workflowInfo().workflowId;
  const audits = new Map<string, AuditEntry[]>();
  const status: PipelineStatus = {
    workflowId: pipelineId,
    policyName: policy.name,
    subject,
    state: 'running',
    stages: policy.stages.map((s) => pendingStage(s.name, stageWorkflowId(pipelineId, s.name))),
    audit: [],
  };
  const record = (r: StageResult) => {
    const i = status.stages.findIndex((s) => s.name === r.status.name);
    if (i < 0) return;
    if (r.status.revision < status.stages[i].revision) return;
    status.stages[i] = r.status;
    audits.set(r.status.name, r.audit);
    status.audit = policy.stages.flatMap((s) => audits.get(s.name) ?? []);
  };
  setHandler(statusQuery, () => status);
  setHandler(policyQuery, () => policy);
  setHandler(stageUpdateSignal, record);
  const report = async (verdict: 'passed' | 'failed' | 'cancelled') => {
    if (subject.source !== 'github') return;
    try {
      await CancellationScope.nonCancellable(() =>
        github.reportToGitHub({ status, verdict, runId: workflowInfo().runId }),
      );
      status.github = { reported: true };
    } catch (e) {
      status.github = { reported: false, error: causeMessage(e) };
    }
  };
  try {
    for (const stage of policy.stages) {
      const modelRef = status.stages.find((s) => s.name === 'train')?.artifacts.model;
      const common = { pipelineId, subject, policy, stage, ...(modelRef ? { modelRef } : {}) };
      const options = { workflowId: stageWorkflowId(pipelineId, stage.name) };
      let result: StageResult;
      if (stage.name === 'release') {
        const earlier = status.stages.filter((s) => s.name !== 'release');
        const manifest = status.stages.find((s) => s.name === 'data')?.manifest;
        result = await executeChild(releaseStage, {
          ...options,
          args: [{ ...common, earlier, audit: status.audit, manifest }],
        });
      } else {
        result = await executeChild(STAGES[stage.name as keyof typeof STAGES], { ...options, args: [common] });
      }
      record(result);
      if (result.status.state !== 'passed') {
        status.state = 'failed';
        status.reason = `stage ${stage.name} ${result.status.state}: ${result.status.error ?? 'no reason recorded'}`;
        break;
      }
    }
    if (status.state === 'running') status.state = 'passed';
  } catch (e) {
    if (!isCancellation(e)) throw e;
    status.state = 'failed';
    status.reason = 'the pipeline was cancelled';
    await report('cancelled');
    throw e;
  }
  await report(status.state === 'passed' ? 'passed' : 'failed');
  return status as PipelineResult;
}

const STAGES: Record<Exclude<StageName, 'release' | 'monitor'>, typeof planStage> = {
  plan: planStage,
  data: dataStage,
  train: trainStage,
  evaluate: evaluateStage,
};

function now(): string {
  return new Date(Date.now()).toISOString();
}
