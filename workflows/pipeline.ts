// The pipeline: one child workflow per stage the policy lists, in order; the first stage that does not pass ends it.
// Versioning: runs wait for approvals for days, so a change to this code that alters the commands it issues
// must be guarded with patched('<change-id>') and the histories under test/histories/ must keep replaying.
import { CancellationScope, executeChild, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { Policy, StageName } from '../policy/index.js';
import { TASK_QUEUE, policyQuery, stageUpdateSignal, statusQuery, stageWorkflowId, type AuditEntry, type PipelineResult, type PipelineStatus, type StageResult, type StageStatus, type Subject } from './messages.js';
import { dataStage, evaluateStage, planStage, releaseStage, trainStage } from './stages.js';
import { causeMessage } from './swimlane.js';

const github = proxyActivities<Activities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '2m',
  retry: { initialInterval: '5s', maximumInterval: '2m', maximumAttempts: 10 },
});

export async function secmlopsPipeline(subject: Subject, policy: Policy): Promise<PipelineResult> {
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
    // Signals may arrive out of order or after the final result: keep the newest report.
    if (r.status.revision < status.stages[i].revision) return;
    status.stages[i] = r.status;
    audits.set(r.status.name, r.audit);
    status.audit = policy.stages.flatMap((s) => audits.get(s.name) ?? []);
  };
  setHandler(statusQuery, () => status);
  setHandler(policyQuery, () => policy);
  setHandler(stageUpdateSignal, record);

  // A PR's pipeline tells GitHub its verdict with the worker's credentials. Only subjects from the start action
  // carry source 'github', which no earlier history does, so this adds no command to any run recorded before it.
  const report = async (verdict: 'passed' | 'failed' | 'cancelled') => {
    if (subject.source !== 'github') return;
    try {
      await CancellationScope.nonCancellable(() => github.reportToGitHub({ status, verdict, runId: workflowInfo().runId }));
      status.github = { reported: true };
    } catch (e) {
      status.github = { reported: false, error: causeMessage(e) };
    }
  };
  try {
    await runStages(policy, subject, pipelineId, status, record);
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

async function runStages(policy: Policy, subject: Subject, pipelineId: string, status: PipelineStatus, record: (r: StageResult) => void): Promise<void> {
  for (const stage of policy.stages) {
    const modelRef = status.stages.find((s) => s.name === 'train')?.artifacts.model;
    const input = { pipelineId, subject, policy, stage, ...(modelRef ? { modelRef } : {}) };
    const options = { workflowId: stageWorkflowId(pipelineId, stage.name) };
    let result: StageResult;
    if (stage.name === 'release') {
      const earlier = status.stages.filter((s) => s.name !== 'release');
      const manifest = status.stages.find((s) => s.name === 'data')?.manifest;
      result = await executeChild(releaseStage, { ...options, args: [{ ...input, earlier, audit: status.audit, manifest }] });
    } else {
      result = await executeChild(STAGES[stage.name], { ...options, args: [input] });
    }
    record(result);
    if (result.status.state !== 'passed') {
      status.state = 'failed';
      status.reason = `stage ${stage.name} ${result.status.state}: ${result.status.error ?? 'no reason recorded'}`;
      return;
    }
  }
  status.state = 'passed';
}

const STAGES: Record<Exclude<StageName, 'release'>, typeof planStage> = { plan: planStage, data: dataStage, train: trainStage, evaluate: evaluateStage };

function pendingStage(name: StageName, workflowId: string): StageStatus {
  return { name, workflowId, state: 'pending', revision: -1, tasks: [], blockers: [], findings: [], metrics: {}, gates: [], artifacts: {} };
}
