// Message and state definitions shared by workflows and every client (CLI, console, actions).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AuditEntry,
  Evidence,
  GateResult,
  PipelineInput,
  Policy,
  SignedDecision,
  SplitSummary,
  StageName,
  Subject,
  ThreatCell,
  Vote,
} from '../policy/index.js';

export type { AuditEntry, Subject };

export const TASK_QUEUE = 'secmlops';
/** Compute-heavy activities; in the dev stack a CPU worker serves it. */
export const GPU_TASK_QUEUE = 'gpu';

export type StageState = 'pending' | 'running' | 'waiting' | 'blocked' | 'passed' | 'failed' | 'rejected';

export interface ManifestEntry {
  path: string;
  sha256: string;
  bytes: number;
}

/** One split as the data stage's validation measured it (the same shape its evidence signs). */
export type SplitReport = SplitSummary;

export interface EvaluationSummary {
  images: number;
  cleanAccuracy: number;
  /** Ops without a gradient rule; white-box attacks then ran as Square Attack. */
  withoutGradient: string[];
  attacks: {
    id: string;
    attack: string;
    eps?: number;
    robustAccuracy: number;
    successRate: number;
    medianLinf: number;
    seconds: number;
  }[];
  /** Accuracy versus epsilon, when the policy asks for it. */
  curve?: { attack: string; eps: number; robustAccuracy: number }[];
  /** The BadNets trigger's success rate on test images of other classes, and the rate without it. */
  backdoor?: { images: number; target: number; success_rate: number; baseline_rate: number };
  /** Membership inference: AUC and advantage of the loss-threshold and the class-calibrated attacks. */
  membership?: {
    images: number;
    loss: { auc: number; advantage: number };
    calibrated: { auc: number; advantage: number };
  };
}

export interface StageStatus {
  name: StageName;
  workflowId: string;
  /** The run the pipeline started, while it runs: readers query that run for the stage's progress. */
  runId?: string;
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
  /** Refused decisions past the per-stage cap: counted here instead of stored in the audit trail. */
  refusalsNotStored?: number;
}

export interface StageResult {
  status: StageStatus;
  audit: AuditEntry[];
  /** Signed measurements of this stage's activities (runs since the trust boundary; absent in older histories). */
  evidence?: Evidence[];
}

export interface PipelineStatus {
  workflowId: string;
  policyName: string;
  subject: Subject;
  /** What decisions are bound to (subjectDigest of the authenticated subject) and the resolved policy's digest. */
  subjectDigest?: string;
  policyDigest?: string;
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
/** A PR comment to read as a decision: the worker fetches and checks it, and signs it with the github channel's key. */
export interface CommentRef {
  repo: string;
  pr: number;
  commentId: number;
}
export const githubCommentUpdate = defineUpdate<DecisionAccepted, [CommentRef]>('githubComment');
// Signal twins for channels that cannot wait for an answer; refused ones land in the audit trail with the reason.
export const approveSignal = defineSignal<[SignedDecision]>('approveSignal');
export const rejectSignal = defineSignal<[SignedDecision]>('rejectSignal');
export const statusQuery = defineQuery<PipelineStatus | StageResult>('status');
/** The policy a pipeline runs under: the console and Slack map their users to its people and roles. */
export const policyQuery = defineQuery<Policy>('policy');
/** The pipeline's argument: a start proven by a signature or an OIDC token, and a policy reference (never a body). */
export type { PipelineInput };
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
