// Message and state definitions shared by workflows and every client (CLI, console, actions).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { GateResult, Policy, SignedDecision, StageName, ThreatCell, Vote } from '../policy/index.js';

export const TASK_QUEUE = 'secmlops';
/** Compute-heavy activities; in the dev stack a CPU worker serves it. */
export const GPU_TASK_QUEUE = 'gpu';

export interface Subject {
  repo: string;
  pr?: number;
  headSha: string;
  /** GitHub login of the change's author; never allowed to approve it. */
  author: string;
  title?: string;
  /** Set by the GitHub start action: the worker then reports the verdict to the PR. */
  source?: 'github';
  /** Where the run can be seen (console or Temporal UI), for links. */
  url?: string;
}

export type StageState = 'pending' | 'running' | 'waiting' | 'blocked' | 'passed' | 'failed' | 'rejected';

export interface AuditEntry {
  /** Workflow time, ISO 8601. */
  at: string;
  stage: string;
  kind: 'decision' | 'refused' | 'escalated' | 'deadline';
  person?: string;
  roles: string[];
  channel?: string;
  decision?: 'approve' | 'reject';
  comment?: string;
  issuedAt?: string;
  signature?: string;
  /** Why a signal's decision was refused, or what an escalation said. */
  reason?: string;
}

export interface ManifestEntry {
  path: string;
  sha256: string;
  bytes: number;
}

export interface SplitReport {
  split: string;
  images: number;
  rows: number;
  cols: number;
  classCounts: number[];
  pixelMean: number;
  pixelStd: number;
  pixelMin: number;
  pixelMax: number;
}

export interface EvaluationSummary {
  images: number;
  cleanAccuracy: number;
  /** Ops without a gradient rule; white-box attacks then ran as Square Attack. */
  withoutGradient: string[];
  attacks: { id: string; attack: string; eps?: number; robustAccuracy: number; successRate: number; medianLinf: number; seconds: number }[];
  /** Accuracy versus epsilon, when the policy asks for it. */
  curve?: { attack: string; eps: number; robustAccuracy: number }[];
}

export interface StageStatus {
  name: StageName;
  workflowId: string;
  state: StageState;
  /** Grows with every report; signals sent in one workflow task may arrive in any order, so the parent keeps the newest. */
  revision: number;
  /** The task running now, in words. */
  task?: string;
  tasks: { name: string; state: 'pending' | 'running' | 'done' | 'failed' }[];
  approval?: { roles: string[]; quorum: number; everyRole: boolean; missingRoles: string[]; approvers: string[] };
  blockers: string[];
  findings: string[];
  metrics: Record<string, number>;
  gates: GateResult[];
  threatModel?: ThreatCell[];
  manifest?: ManifestEntry[];
  splits?: SplitReport[];
  evaluation?: EvaluationSummary;
  artifacts: Record<string, string>;
  error?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface StageResult {
  status: StageStatus;
  audit: AuditEntry[];
}

export interface PipelineStatus {
  workflowId: string;
  policyName: string;
  subject: Subject;
  state: 'running' | 'passed' | 'failed';
  stages: StageStatus[];
  audit: AuditEntry[];
  reason?: string;
  /** For a PR's pipeline: whether the verdict reached GitHub, or why not. */
  github?: { reported: boolean; error?: string };
}

export type PipelineResult = PipelineStatus & { state: 'passed' | 'failed' };

export interface DecisionAccepted {
  stage: string;
  /** Set once the decision settled the stage. */
  outcome?: 'approved' | 'rejected';
  missingRoles: string[];
}

// Updates carry a channel-signed decision; the validator checks it before anything is written to history.
export const approveUpdate = defineUpdate<DecisionAccepted, [SignedDecision]>('approve');
export const rejectUpdate = defineUpdate<DecisionAccepted, [SignedDecision]>('reject');
// Signal twins for channels that cannot wait for an answer; refused ones land in the audit trail with the reason.
export const approveSignal = defineSignal<[SignedDecision]>('approveSignal');
export const rejectSignal = defineSignal<[SignedDecision]>('rejectSignal');
export const statusQuery = defineQuery<PipelineStatus | StageResult>('status');
/** The policy a pipeline runs under: the console and Slack map their users to its people and roles. */
export const policyQuery = defineQuery<Policy>('policy');
/** A stage child reports every change to its parent, so the pipeline's status query shows all swimlanes. */
export const stageUpdateSignal = defineSignal<[StageResult]>('stageUpdate');

export type { Vote };

/** Every digest a pipeline holds, for reports: the data stage's files, then each stage's stored artifacts. */
export function artifactDigests(s: PipelineStatus): { stage: string; name: string; ref: string }[] {
  return s.stages.flatMap((st) => [
    ...(st.manifest ?? []).map((f) => ({ stage: st.name, name: f.path, ref: `sha256:${f.sha256}` })),
    ...Object.entries(st.artifacts).map(([name, ref]) => ({ stage: st.name, name, ref })),
  ]);
}

export function stageWorkflowId(pipelineId: string, stage: string): string {
  return `${pipelineId}/${stage}`;
}
