// The runtime every stage child shares: its status, its audit trail, reports to the parent, and the role-gated approval.
import {
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  metricMeter,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { CpuActivities } from '../activities/index.js';
// Values from their own modules, not the policy barrel: the barrel brings the YAML parser, which every workflow
// would evaluate again at its start (module state is fresh per workflow).
import type {
  AuditEntry as Entry,
  Evidence,
  GateResult,
  Policy,
  SignedDecision,
  Stage,
  Vote,
} from '../policy/index.js';
import { checkDecision, missingRoles, quorumMet, rolesOf, unmeetableApproval } from '../policy/approvals.js';
import { AUDIT_LIMITS, appendEntry, bounded } from '../policy/audit.js';
import { DecisionVerifier } from '../policy/decision.js';
import { formatDuration } from '../policy/duration.js';
import { describeGate } from '../policy/gates.js';
import { own } from '../policy/own.js';
import {
  approveSignal,
  approveUpdate,
  githubCommentUpdate,
  rejectSignal,
  rejectUpdate,
  TASK_QUEUE,
  stageUpdateSignal,
  stageWorkflowId,
  statusQuery,
  type AuditEntry,
  type CommentRef,
  type DecisionAccepted,
  type StageResult,
  type StageStatus,
  type Subject,
} from './messages.js';

export interface StageInput {
  pipelineId: string;
  subject: Subject;
  policy: Policy;
  stage: Stage;
  /** The model an earlier stage produced (the train stage), as an artifact reference; it replaces artifacts.model. */
  modelRef?: string;
  /** The data stage's sanitised copy of the training split (from its signed result), which the train stage reads. */
  sanitised?: { images: string; labels: string; removed: number };
  /** Runs since the trust boundary: what decisions and evidence are bound to, and the audit chain's head so far. */
  subjectDigest?: string;
  policyDigest?: string;
  chainHead?: string;
  /** The pipeline's start evidence: what a worker needs to act for this pipeline (PR comments). */
  start?: Evidence;
  /**
   * 'query': the stage sends no progress Signals; readers query it while it runs (client/pipelines.ts). Stages of
   * pipelines started before this field, or begun by a worker that predates it, replay with their Signals.
   */
  progress?: 'query';
}

/**
 * The trust boundary (worker-resolved starts, signed evidence, decisions bound to the change, the audit chain,
 * release approving before it signs). Histories recorded before it replay the old behaviour.
 */
export const TRUSTED_PIPELINE = 'secmlops-trusted-pipeline-v2';

/** Stages whose progress is read by query (StageInput.progress) send no progress Signals. */
export const PROGRESS_BY_QUERY = 'secmlops-stage-progress-by-query';

/** An activity failure wraps the activity's own error; its message is what a person needs. */
export function causeMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

/** Made when recorded: the workflow's meter can be used only inside a running workflow. */
const approvalWait = () =>
  metricMeter.createHistogram('secmlops_approval_wait', 'float', 'seconds', 'from approval request to decision');

const slack = proxyActivities<CpuActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 3 },
});
const comments = proxyActivities<CpuActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3 },
});

export class Swimlane {
  readonly status: StageStatus;
  readonly audit: AuditEntry[] = [];
  /** Signed results of this stage's activities, passed on untouched to the release signer. */
  readonly evidence: Evidence[] = [];
  /** Whether this run is past the trust boundary (false only when replaying a history recorded before it). */
  readonly v2: boolean;
  private votes: Vote[] = [];
  private outcome: 'approved' | 'rejected' | undefined;
  private head: string;
  private refusals = 0;
  /** Decisions whose signatures verified, so the handler does not verify again what its validator just did. */
  private readonly signatures = new DecisionVerifier();

  constructor(
    private readonly input: StageInput,
    taskNames: string[],
  ) {
    const { stage } = input;
    // Evaluated once, here, never inside a validator.
    this.v2 = patched(TRUSTED_PIPELINE);
    this.head = input.chainHead ?? '';
    if (this.v2) refuseUnlessStartedByPipeline(input);
    this.status = {
      name: stage.name,
      workflowId: workflowInfo().workflowId,
      state: 'running',
      revision: 0,
      tasks: [...taskNames, ...(stage.approval ? ['approval'] : [])].map((name) => ({ name, state: 'pending' })),
      blockers: [],
      findings: [],
      metrics: {},
      gates: [],
      artifacts: {},
      startedAt: now(),
    };
    if (stage.approval) {
      const a = stage.approval;
      this.status.approval = {
        roles: a.roles,
        quorum: a.quorum,
        everyRole: a.everyRole,
        missingRoles: [...a.roles],
        approvers: [],
      };
    }
    setHandler(statusQuery, () => this.result());
    const validator = (kind: 'approve' | 'reject') => (d: SignedDecision) => {
      const reason = this.refusal(kind, d);
      if (reason) throw ApplicationFailure.nonRetryable(reason, 'DecisionRefused');
    };
    setHandler(approveUpdate, (d) => this.accept('approve', d), { validator: validator('approve') });
    setHandler(rejectUpdate, (d) => this.accept('reject', d), { validator: validator('reject') });
    const signal = (kind: 'approve' | 'reject') => (d: SignedDecision) => {
      const reason = this.refusal(kind, d);
      if (reason) {
        this.refused(kind, d, reason);
        this.report();
        return;
      }
      this.accept(kind, d);
    };
    setHandler(approveSignal, signal('approve'));
    setHandler(rejectSignal, signal('reject'));
    if (this.v2) {
      // A PR comment becomes a decision on the worker (validators cannot do I/O, so the handler calls the activity).
      setHandler(githubCommentUpdate, (ref) => this.acceptComment(ref), {
        validator: (ref: CommentRef) => {
          const reason = this.commentRefusal(ref);
          if (reason) throw ApplicationFailure.nonRetryable(reason, 'DecisionRefused');
        },
      });
    }
  }

  result(): StageResult {
    return this.v2
      ? { status: this.status, audit: this.audit, evidence: this.evidence }
      : { status: this.status, audit: this.audit };
  }

  /** Adds an entry to the audit trail; past the trust boundary every entry is chained to the one before. */
  log(entry: Omit<Entry, 'prev'>): void {
    if (this.v2) this.head = appendEntry(this.audit, this.head, entry);
    else this.audit.push(entry);
  }

  /** What this stage's activities sign their evidence for (nothing before the trust boundary). */
  evidenceFor(): { pipelineId: string; stage: Stage['name']; subjectDigest: string; policyDigest: string } | undefined {
    const { pipelineId, subjectDigest, policyDigest } = this.input;
    if (!this.v2 || !subjectDigest || !policyDigest) return undefined;
    return { pipelineId, stage: this.status.name, subjectDigest, policyDigest };
  }

  /**
   * A stage whose approval can never be met (once the change's author is excluded) fails at once, saying why,
   * instead of waiting for its deadline.
   */
  unmeetable(): StageResult | undefined {
    const a = this.input.stage.approval;
    if (!this.v2 || !a) return undefined;
    const why = unmeetableApproval(this.input.policy, a, this.input.subject.author);
    return why ? this.fail(`the approval cannot be met: ${why}`) : undefined;
  }

  /**
   * Marks a change of state. Stages of older pipelines also send it to the parent as a Signal (best effort; the parent
   * also receives the final result); now readers query the running stage instead, which saves each pipeline a Signal,
   * its events and a workflow task on each side per report.
   */
  report(): void {
    const parent = workflowInfo().parent;
    if (!parent) return;
    this.status.revision++;
    // Marked in the history as well as asked for in the input: a stage that an older worker began (and signalled
    // from) replays its Signals on a newer one.
    if (this.input.progress === 'query' && patched(PROGRESS_BY_QUERY)) return;
    getExternalWorkflowHandle(parent.workflowId, parent.runId)
      .signal(stageUpdateSignal, this.result())
      .catch((err: unknown) => log.warn('could not report stage status to the pipeline', { error: String(err) }));
  }

  async task<T>(name: string, what: string, work: () => Promise<T>): Promise<T> {
    const t = this.status.tasks.find((x) => x.name === name);
    if (t) t.state = 'running';
    this.status.task = what;
    if (this.v2)
      this.log({ at: now(), stage: this.status.name, kind: 'task', roles: [], name, state: 'running', reason: what });
    this.report();
    try {
      const value = await work();
      if (t) t.state = 'done';
      if (this.v2) this.log({ at: now(), stage: this.status.name, kind: 'task', roles: [], name, state: 'done' });
      return value;
    } catch (err) {
      if (t) t.state = 'failed';
      if (this.v2)
        this.log({
          at: now(),
          stage: this.status.name,
          kind: 'task',
          roles: [],
          name,
          state: 'failed',
          reason: bounded(causeMessage(err)),
        });
      throw err;
    }
  }

  /** Records the gates' outcomes in the trail (the release signer recomputes them from signed metrics). */
  gates(results: GateResult[]): void {
    this.status.gates = results;
    if (this.v2)
      for (const g of results)
        this.log({
          at: now(),
          stage: this.status.name,
          kind: 'gate',
          roles: [],
          name: g.id,
          state: g.passed ? 'passed' : 'failed',
          reason: describeGate(g),
        });
  }

  fail(error: string): StageResult {
    this.status.state = 'failed';
    this.status.error = error;
    return this.finish();
  }

  pass(): StageResult {
    this.status.state = 'passed';
    return this.finish();
  }

  /** Waits for the policy's approval, escalating after the timeout and failing closed at the deadline. */
  async approval(): Promise<StageResult> {
    return (await this.approved()) ?? this.pass();
  }

  /** Waits for the approval; undefined once it is given, or the stage's failed or rejected result. */
  async approved(): Promise<StageResult | undefined> {
    const a = this.input.stage.approval;
    if (!a) return undefined;
    const task = this.status.tasks.find((x) => x.name === 'approval');
    if (task) task.state = 'running';
    this.status.state = this.status.blockers.length > 0 ? 'blocked' : 'waiting';
    this.status.task = `waiting for ${a.roles.join(' + ')}`;
    if (this.v2)
      this.log({
        at: now(),
        stage: this.status.name,
        kind: 'task',
        roles: a.roles,
        name: 'approval',
        state: 'running',
        reason: this.status.task,
      });
    this.report();
    this.notify('waiting', a.roles);
    const since = Date.now();
    const decided = () => this.outcome !== undefined;
    if (a.timeoutMs !== undefined && !(await condition(decided, a.timeoutMs))) {
      const reason = `no decision after ${formatDuration(a.timeoutMs)}; escalated to ${a.escalation}`;
      this.log({
        at: now(),
        stage: this.status.name,
        kind: 'escalated',
        roles: a.escalation ? [a.escalation] : [],
        reason,
      });
      log.warn(reason, { stage: this.status.name });
      this.report();
      this.notify('escalated', a.escalation ? [a.escalation] : [], reason);
    }
    if (a.deadlineMs !== undefined) {
      if (!(await condition(decided, a.deadlineMs - (a.timeoutMs ?? 0)))) {
        const reason = `deadline of ${formatDuration(a.deadlineMs)} passed without approval`;
        this.log({ at: now(), stage: this.status.name, kind: 'deadline', roles: [], reason });
        if (task) task.state = 'failed';
        return this.fail(reason);
      }
    } else await condition(decided);
    // Exported on the worker's Prometheus endpoint (the SDK skips it while replaying).
    approvalWait().record((Date.now() - since) / 1000, { stage: this.status.name, outcome: this.outcome ?? 'none' });
    if (task) task.state = this.outcome === 'approved' ? 'done' : 'failed';
    if (this.outcome === 'rejected') {
      const v = this.votes.find((x) => x.decision === 'reject');
      this.status.state = 'rejected';
      this.status.error = `rejected by ${v?.person}: ${v?.comment || 'no reason given'}`;
      return this.finish();
    }
    this.status.state = 'running';
    return undefined;
  }

  /**
   * Announces the wait (or the escalation) in Slack when the policy names a channel, without holding up the
   * approval: a failed notice becomes a finding. Policies without notifications (all runs recorded before they
   * existed) schedule nothing here.
   */
  private notify(kind: 'waiting' | 'escalated', roles: string[], reason?: string): void {
    const channel = this.input.policy.notifications?.slack?.channel;
    if (!channel) return;
    const { pipelineId, subject } = this.input;
    const digest =
      this.v2 && this.input.subjectDigest
        ? { subjectDigest: this.input.subjectDigest, ...(this.input.start ? { start: this.input.start } : {}) }
        : {};
    slack
      .notifySlack({
        kind,
        channel,
        pipelineId,
        stage: this.status.name,
        roles,
        subject,
        ...digest,
        ...(reason ? { reason } : {}),
      })
      .catch((e: unknown) => {
        this.status.findings.push(
          `the Slack ${kind === 'waiting' ? 'approval request' : 'escalation'} was not posted: ${causeMessage(e)}`,
        );
        this.report();
      });
  }

  private finish(): StageResult {
    this.status.task = undefined;
    this.status.endedAt = now();
    if (this.v2)
      this.log({
        at: now(),
        stage: this.status.name,
        kind: 'end',
        roles: [],
        state: this.status.state,
        ...(this.status.error ? { reason: bounded(this.status.error) } : {}),
      });
    this.report();
    return this.result();
  }

  /** A refused Signal lands in the trail with its reason, bounded; past the per-stage cap it is only counted. */
  private refused(kind: 'approve' | 'reject', d: SignedDecision, reason: string): void {
    if (!this.v2) {
      this.audit.push({
        at: now(),
        stage: this.status.name,
        kind: 'refused',
        person: str(d?.person),
        roles: [],
        channel: str(d?.channel),
        decision: kind,
        reason,
      });
      return;
    }
    this.refusals++;
    if (this.refusals > AUDIT_LIMITS.refusalsPerStage) {
      this.status.refusalsNotStored = this.refusals - AUDIT_LIMITS.refusalsPerStage;
      return;
    }
    const last =
      this.refusals === AUDIT_LIMITS.refusalsPerStage
        ? `; further refusals of stage ${this.status.name} are counted, not stored`
        : '';
    this.log({
      at: now(),
      stage: this.status.name,
      kind: 'refused',
      person: bounded(d?.person, 100),
      roles: [],
      channel: bounded(d?.channel, 40),
      decision: kind,
      reason: bounded(reason) + last,
    });
  }

  private refusal(kind: 'approve' | 'reject', d: SignedDecision): string | undefined {
    if (d && d.decision !== kind) return `the ${kind} message carries a signed "${d.decision}" decision`;
    const state = this.status.state;
    const waiting = state === 'waiting' || state === 'blocked';
    return checkDecision(
      {
        policy: this.input.policy,
        approval: this.input.stage.approval ?? { roles: [], quorum: 1, everyRole: true },
        workflowId: this.input.pipelineId,
        stage: this.status.name,
        author: this.input.subject.author,
        notWaiting: !this.input.stage.approval
          ? 'it needs no approval'
          : waiting && !this.outcome
            ? undefined
            : `it is ${this.outcome ?? state}`,
        blockers: this.status.blockers,
        votes: this.votes,
        now: Date.now(),
        ...(this.v2 ? { subjectDigest: this.input.subjectDigest } : {}),
      },
      d,
      this.signatures.verify,
    );
  }

  private commentRefusal(ref: CommentRef): string | undefined {
    if (
      !ref ||
      typeof ref !== 'object' ||
      typeof ref.repo !== 'string' ||
      !Number.isInteger(ref.pr) ||
      !Number.isInteger(ref.commentId) ||
      ref.commentId <= 0
    ) {
      return 'expected {repo, pr, commentId} naming a PR comment';
    }
    const { subject, policy } = this.input;
    if (subject.source !== 'github' || subject.repo !== ref.repo || subject.pr !== ref.pr)
      return `this pipeline was not started for ${ref.repo}#${ref.pr} through GitHub`;
    if (!own(policy.channels, 'github')) return 'the policy pins no github channel key, so PR comments cannot decide';
    if (!this.input.start) return 'this stage has no start evidence to act on';
    return this.notWaiting();
  }

  private async acceptComment(ref: CommentRef): Promise<DecisionAccepted> {
    const read = comments.readGitHubDecision({
      commentId: ref.commentId,
      stage: this.status.name,
      notBefore: workflowInfo().startTime.getTime(),
      start: this.input.start!,
    });
    // The worker's reason for refusing the comment goes back to the caller as the Update's failure.
    const d = await read.catch((e: unknown) => {
      throw ApplicationFailure.nonRetryable(causeMessage(e), 'DecisionRefused');
    });
    return this.accept(d.decision, d);
  }

  /** Why the stage takes no decision now, or undefined while it waits for one. */
  private notWaiting(): string | undefined {
    if (!this.input.stage.approval) return `stage ${this.status.name} needs no approval`;
    const state = this.status.state;
    if ((state === 'waiting' || state === 'blocked') && !this.outcome) return undefined;
    return `stage ${this.status.name} is not waiting for approval (it is ${this.outcome ?? state})`;
  }

  private accept(kind: 'approve' | 'reject', d: SignedDecision): DecisionAccepted {
    // Validators and handlers run in order, but a signal and an update may interleave: check again. An
    // ApplicationFailure rejects the Update; any other error would fail the workflow task and stick the stage.
    const reason = this.refusal(kind, d);
    if (reason) throw ApplicationFailure.nonRetryable(reason, 'DecisionRefused');
    const a = this.input.stage.approval!;
    const roles = rolesOf(this.input.policy, d.person).filter((r) => a.roles.includes(r));
    const vote: Vote = { ...d, roles };
    this.votes.push(vote);
    this.log({
      at: now(),
      stage: this.status.name,
      kind: 'decision',
      person: d.person,
      roles,
      channel: d.channel,
      decision: d.decision,
      comment: d.comment,
      issuedAt: d.issuedAt,
      signature: d.signature,
      ...(this.v2 ? { subjectDigest: d.subjectDigest } : {}),
    });
    if (kind === 'reject') this.outcome = 'rejected';
    else if (quorumMet(a, this.votes)) this.outcome = 'approved';
    const approval = this.status.approval!;
    approval.missingRoles = missingRoles(a, this.votes);
    approval.approvers = this.votes.filter((v) => v.decision === 'approve').map((v) => v.person);
    this.report();
    return { stage: this.status.name, outcome: this.outcome, missingRoles: approval.missingRoles };
  }
}

/** A stage runs only as its pipeline's child: a client that starts one directly cannot feed it forged inputs. */
function refuseUnlessStartedByPipeline(input: StageInput): void {
  const info = workflowInfo();
  const parent = info.parent;
  if (
    !parent ||
    input.pipelineId !== parent.workflowId ||
    stageWorkflowId(parent.workflowId, input.stage.name) !== info.workflowId
  ) {
    throw ApplicationFailure.nonRetryable(
      `stage workflows run only as children of their pipeline; ${info.workflowId} was ${parent ? `started by ${parent.workflowId}` : 'started directly'}`,
      'NotStartedByPipeline',
    );
  }
  if (!input.subjectDigest || !input.policyDigest || !input.chainHead) {
    throw ApplicationFailure.nonRetryable(
      `${info.workflowId} was started without its subject digest, policy digest and audit chain head (a pipeline from before an upgrade?); start the pipeline again`,
      'NotStartedByPipeline',
    );
  }
}

function now(): string {
  return new Date(Date.now()).toISOString();
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
