// The runtime every stage child shares: its status, its audit trail, reports to the parent, and the role-gated approval.
import { condition, getExternalWorkflowHandle, log, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { checkDecision, formatDuration, missingRoles, quorumMet, rolesOf, type Policy, type SignedDecision, type Stage, type Vote } from '../policy/index.js';
import {
  approveSignal,
  approveUpdate,
  rejectSignal,
  rejectUpdate,
  TASK_QUEUE,
  stageUpdateSignal,
  statusQuery,
  type AuditEntry,
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
}

/** An activity failure wraps the activity's own error; its message is what a person needs. */
export function causeMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

const slack = proxyActivities<Activities>({ taskQueue: TASK_QUEUE, startToCloseTimeout: '30s', retry: { maximumAttempts: 3 } });

export class Swimlane {
  readonly status: StageStatus;
  readonly audit: AuditEntry[] = [];
  private votes: Vote[] = [];
  private outcome: 'approved' | 'rejected' | undefined;

  constructor(
    private readonly input: StageInput,
    taskNames: string[],
  ) {
    const { stage } = input;
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
      this.status.approval = { roles: a.roles, quorum: a.quorum, everyRole: a.everyRole, missingRoles: [...a.roles], approvers: [] };
    }
    setHandler(statusQuery, () => this.result());
    const validator = (kind: 'approve' | 'reject') => (d: SignedDecision) => {
      const reason = this.refusal(kind, d);
      if (reason) throw new Error(reason);
    };
    setHandler(approveUpdate, (d) => this.accept('approve', d), { validator: validator('approve') });
    setHandler(rejectUpdate, (d) => this.accept('reject', d), { validator: validator('reject') });
    const signal = (kind: 'approve' | 'reject') => (d: SignedDecision) => {
      const reason = this.refusal(kind, d);
      if (reason) {
        this.audit.push({ at: now(), stage: stage.name, kind: 'refused', person: str(d?.person), roles: [], channel: str(d?.channel), decision: kind, reason });
        this.report();
        return;
      }
      this.accept(kind, d);
    };
    setHandler(approveSignal, signal('approve'));
    setHandler(rejectSignal, signal('reject'));
  }

  result(): StageResult {
    return { status: this.status, audit: this.audit };
  }

  /** Sends the current state to the parent pipeline; best effort, the parent also receives the final result. */
  report(): void {
    const parent = workflowInfo().parent;
    if (!parent) return;
    this.status.revision++;
    getExternalWorkflowHandle(parent.workflowId, parent.runId)
      .signal(stageUpdateSignal, this.result())
      .catch((err: unknown) => log.warn('could not report stage status to the pipeline', { error: String(err) }));
  }

  async task<T>(name: string, what: string, work: () => Promise<T>): Promise<T> {
    const t = this.status.tasks.find((x) => x.name === name);
    if (t) t.state = 'running';
    this.status.task = what;
    this.report();
    try {
      const value = await work();
      if (t) t.state = 'done';
      return value;
    } catch (err) {
      if (t) t.state = 'failed';
      throw err;
    }
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
    const a = this.input.stage.approval;
    if (!a) return this.pass();
    const task = this.status.tasks.find((x) => x.name === 'approval');
    if (task) task.state = 'running';
    this.status.state = this.status.blockers.length > 0 ? 'blocked' : 'waiting';
    this.status.task = `waiting for ${a.roles.join(' + ')}`;
    this.report();
    this.notify('waiting', a.roles);
    const decided = () => this.outcome !== undefined;
    if (a.timeoutMs !== undefined && !(await condition(decided, a.timeoutMs))) {
      const reason = `no decision after ${formatDuration(a.timeoutMs)}; escalated to ${a.escalation}`;
      this.audit.push({ at: now(), stage: this.status.name, kind: 'escalated', roles: a.escalation ? [a.escalation] : [], reason });
      log.warn(reason, { stage: this.status.name });
      this.report();
      this.notify('escalated', a.escalation ? [a.escalation] : [], reason);
    }
    if (a.deadlineMs !== undefined) {
      if (!(await condition(decided, a.deadlineMs - (a.timeoutMs ?? 0)))) {
        const reason = `deadline of ${formatDuration(a.deadlineMs)} passed without approval`;
        this.audit.push({ at: now(), stage: this.status.name, kind: 'deadline', roles: [], reason });
        if (task) task.state = 'failed';
        return this.fail(reason);
      }
    } else await condition(decided);
    if (task) task.state = this.outcome === 'approved' ? 'done' : 'failed';
    if (this.outcome === 'rejected') {
      const v = this.votes.find((x) => x.decision === 'reject');
      this.status.state = 'rejected';
      this.status.error = `rejected by ${v?.person}: ${v?.comment || 'no reason given'}`;
      return this.finish();
    }
    return this.pass();
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
    slack.notifySlack({ kind, channel, pipelineId, stage: this.status.name, roles, subject, ...(reason ? { reason } : {}) }).catch((e: unknown) => {
      this.status.findings.push(`the Slack ${kind === 'waiting' ? 'approval request' : 'escalation'} was not posted: ${causeMessage(e)}`);
      this.report();
    });
  }

  private finish(): StageResult {
    this.status.task = undefined;
    this.status.endedAt = now();
    this.report();
    return this.result();
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
        notWaiting: !this.input.stage.approval ? 'it needs no approval' : waiting && !this.outcome ? undefined : `it is ${this.outcome ?? state}`,
        blockers: this.status.blockers,
        votes: this.votes,
        now: Date.now(),
      },
      d,
    );
  }

  private accept(kind: 'approve' | 'reject', d: SignedDecision): DecisionAccepted {
    // Validators and handlers run in order, but a signal and an update may interleave: check again.
    const reason = this.refusal(kind, d);
    if (reason) throw new Error(reason);
    const a = this.input.stage.approval!;
    const roles = rolesOf(this.input.policy, d.person).filter((r) => a.roles.includes(r));
    const vote: Vote = { ...d, roles };
    this.votes.push(vote);
    this.audit.push({
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

function now(): string {
  return new Date(Date.now()).toISOString();
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
