// The monitor stage: a long-running workflow per released model, started by the pipeline after release and left
// running when the pipeline ends. Every window it judges the guarded server's telemetry and re-hashes the served
// model; a breach opens an incident that only the monitor stage's approvers (R8) resolve, by rolling back to an
// earlier release or retraining. It continues as new every `windowsPerRun` windows to keep its history small.
import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
// Type only: the pipeline starts the monitor, so a runtime import back would make the two modules a cycle.
import type { secmlopsPipeline } from './pipeline.js';
import type { CpuActivities } from '../activities/index.js';
import type { SignedDecision } from '../policy/index.js';
import { rolesOf } from '../policy/approvals.js';
import { AUDIT_LIMITS, appendEntry, bounded, genesisDigest } from '../policy/audit.js';
import { checkIncidentDecision } from '../policy/incident.js';
import { retrainWorkflowId } from '../policy/start.js';
import { monitorApproval } from '../policy/incident.js';
import type { WindowMeasurement } from '../activities/monitor.js';
import { TASK_QUEUE } from './messages.js';
import {
  WINDOWS_KEPT,
  monitorQuery,
  resolveIncidentUpdate,
  type Incident,
  type IncidentAccepted,
  type IncidentKind,
  type MonitorInput,
  type MonitorState,
  type MonitorStatus,
} from './monitor-messages.js';
import { causeMessage } from './swimlane.js';

const acts = proxyActivities<CpuActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});
const notices = proxyActivities<CpuActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '1m',
  retry: { initialInterval: '5s', maximumInterval: '1m', maximumAttempts: 5 },
});

export async function secmlopsMonitor(input: MonitorInput): Promise<void> {
  const info = workflowInfo();
  // Only the pipeline starts its monitor (its parent survives continue-as-new); a look-alike started by anyone with
  // namespace access gets nowhere: the server checks every switch against a signed decision anyway.
  if (info.parent?.workflowId !== input.pipelineId || info.workflowId !== `${input.pipelineId}/monitor`)
    throw ApplicationFailure.nonRetryable(
      `the monitor runs only as the child of its pipeline; ${info.workflowId} was not started by ${input.pipelineId}`,
      'NotStartedByPipeline',
    );
  const config = input.policy.monitor;
  if (!config) throw ApplicationFailure.nonRetryable('the policy has no monitor block', 'NoMonitorConfig');
  const state: MonitorState = input.carried ?? {
    windows: [],
    windowCount: 0,
    incidents: [],
    serving: {
      ...input.release,
      since: now(),
      pipeline: input.pipelineId,
    },
    audit: [],
    head: genesisDigest(info.workflowId),
    refusalsNotStored: 0,
    runs: 0,
    incidentCount: 0,
    failedWindows: 0,
    quietWindows: 0,
  };
  setHandler(monitorQuery, (): MonitorStatus => ({
    ...state,
    workflowId: info.workflowId,
    pipelineId: input.pipelineId,
    windowMs: config.windowMs,
  }));

  const audit = (entry: Omit<Parameters<typeof appendEntry>[2], 'at'>) => {
    state.head = appendEntry(state.audit, state.head, { at: now(), ...entry });
  };
  const refusal = (d: SignedDecision): string | undefined => {
    const m = /^incident-(\d+)$/.exec(String(d?.stage));
    const incident = m ? state.incidents.find((i) => i.id === Number(m[1])) : undefined;
    if (!incident) return `no incident ${String(d?.stage)} on ${info.workflowId}`;
    return checkIncidentDecision(
      {
        policy: input.policy,
        workflowId: info.workflowId,
        incident: incident.id,
        modelSha256: incident.modelSha256,
        notWaiting: incident.state === 'open' ? undefined : `incident ${incident.id} is ${incident.state}`,
        votes: incident.votes,
        now: Date.now(),
        // Separation of duties: the change's author does not resolve incidents on its model.
        author: input.start?.body.payload.subject.author,
      },
      d,
    );
  };
  setHandler(resolveIncidentUpdate, (d) => resolve(d), {
    validator: (d: SignedDecision) => {
      // A refused decision goes back to its sender and leaves no trace in history (validators change nothing).
      const why = refusal(d);
      if (why) throw ApplicationFailure.nonRetryable(why, 'DecisionRefused');
    },
  });

  async function resolve(d: SignedDecision): Promise<IncidentAccepted> {
    const incident = state.incidents.find((i) => `incident-${i.id}` === d.stage)!;
    const roles = rolesOf(input.policy, d.person).filter((r) => monitorApproval(input.policy).roles.includes(r));
    incident.state = 'deciding';
    const decided = { stage: `incident-${incident.id}`, person: d.person, roles, channel: d.channel };
    if (d.decision === 'reject') {
      incident.state = 'dismissed';
      incident.decidedBy = d.person;
      incident.votes.push({ ...d, comment: bounded(d.comment) ?? '', roles });
      audit({ ...decided, kind: 'decision', decision: 'reject', comment: bounded(d.comment), signature: d.signature });
      return { incident: incident.id, outcome: 'dismissed', serving: state.serving };
    }
    const r = d.resolution!;
    if (r.action === 'rollback') {
      let target;
      try {
        target = await acts.checkRollback({
          attestation: r.attestation,
          policyDigest: input.policyDigest,
          ...(input.policy.artifacts.model?.sha256 ? { modelPin: input.policy.artifacts.model.sha256 } : {}),
          current: state.serving.modelSha256,
          ...(state.serving.shape ? { shape: state.serving.shape } : {}),
        });
      } catch (e) {
        incident.state = 'open';
        keepRefusal(decided, causeMessage(e));
        throw ApplicationFailure.nonRetryable(causeMessage(e), 'DecisionRefused');
      }
      state.serving = {
        attestation: r.attestation,
        modelSha256: target.modelSha256,
        since: now(),
        pipeline: target.pipeline,
        shape: target.shape,
        decision: d,
      };
    } else {
      try {
        incident.retrain = await retrain(incident.id, d);
      } catch (e) {
        incident.state = 'open';
        keepRefusal(decided, causeMessage(e));
        throw ApplicationFailure.nonRetryable(`the retrain did not start: ${causeMessage(e)}`, 'DecisionRefused');
      }
    }
    incident.state = 'resolved';
    incident.resolution = r;
    incident.decidedBy = d.person;
    incident.votes.push({ ...d, comment: bounded(d.comment) ?? '', roles });
    audit({
      ...decided,
      kind: 'decision',
      decision: 'approve',
      comment: bounded(d.comment),
      signature: d.signature,
      reason:
        r.action === 'rollback'
          ? `rollback to ${r.attestation} (model sha256:${state.serving.modelSha256})`
          : `retrain: started pipeline ${incident.retrain}`,
    });
    return { incident: incident.id, outcome: 'resolved', serving: state.serving };
  }

  /** A new pipeline for the same change, proven by the original start and this decision (activities/start.ts). */
  async function retrain(incident: number, d: SignedDecision): Promise<string> {
    if (!input.start) throw new Error('the monitor holds no start evidence of the original pipeline');
    const workflowId = retrainWorkflowId(input.pipelineId, incident);
    await startChild<typeof secmlopsPipeline>('secmlopsPipeline', {
      workflowId,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [{ start: { kind: 'retrain', original: input.start, decision: d } }],
    });
    return workflowId;
  }

  function keepRefusal(entry: { stage: string; person: string; roles: string[]; channel: string }, why: string) {
    if (state.audit.filter((e) => e.kind === 'refused').length >= AUDIT_LIMITS.refusalsPerStage) {
      state.refusalsNotStored++;
      return;
    }
    audit({ ...entry, kind: 'refused', reason: bounded(why) });
  }

  function open(kind: IncidentKind, window: number, detail: string): void {
    // One open incident per kind: a drift that lasts does not page the responder every window.
    if (state.incidents.some((i) => i.kind === kind && (i.state === 'open' || i.state === 'deciding'))) return;
    const incident: Incident = {
      id: ++state.incidentCount,
      kind,
      openedAt: now(),
      window,
      detail,
      modelSha256: state.serving.modelSha256,
      state: 'open',
      votes: [],
    };
    // The state travels through continue-as-new: closed incidents beyond the last 100 stay in the trail only.
    state.incidents = [...state.incidents, incident].filter(
      (i, k, all) => k >= all.length - INCIDENTS_KEPT || i.state === 'open' || i.state === 'deciding',
    );
    audit({
      stage: `incident-${incident.id}`,
      kind: 'task',
      name: kind,
      state: 'open',
      roles: [],
      reason: bounded(detail),
    });
    const channel = input.policy.notifications?.slack?.channel;
    if (!channel || !input.start) return;
    const posting = notices
      .notifyIncident({
        start: input.start,
        monitorId: info.workflowId,
        incident: incident.id,
        kind,
        detail,
        modelSha256: incident.modelSha256,
        roles: monitorApproval(input.policy).roles,
      })
      .then(
        () => void (incident.notice = { posted: true }),
        (e: unknown) => void (incident.notice = { posted: false, error: causeMessage(e) }),
      );
    pendingNotices.push(posting);
  }
  const pendingNotices: Promise<void>[] = [];

  if (state.serving.shape === undefined && !input.carried) {
    // Known while the release is fresh, so a rollback target with other inputs is refused even after tampering.
    state.serving.shape = await acts.servedShape({ modelSha256: state.serving.modelSha256 }).catch(() => undefined);
  }
  let since = state.windows.at(-1)?.until ?? Date.now();
  for (let w = 0; w < config.windowsPerRun; w++) {
    await sleep(config.windowMs);
    const until = Date.now();
    const index = state.windowCount++;
    let measured: WindowMeasurement;
    try {
      measured = await acts.monitorWindow({
        modelSha256: state.serving.modelSha256,
        since,
        until,
        reference: input.reference,
        thresholds: { ...config.drift, minInputs: config.minInputs, flagRate: flagRateOf(input) },
        maxFileBytes: config.telemetry.maxFileBytes,
      });
      state.failedWindows = 0;
    } catch (e) {
      // A monitor that cannot measure must not fall silent: the window is kept with why, and repeated it pages.
      measured = unmeasured(since, until, causeMessage(e));
      if (++state.failedWindows >= FAILURES_BEFORE_INCIDENT)
        open('monitoring', index, `${state.failedWindows} windows in a row could not be measured: ${measured.error}`);
    }
    since = until;
    state.windows = [...state.windows, { ...measured, index }].slice(-WINDOWS_KEPT);
    if (!measured.integrity.ok && !measured.error)
      open('integrity', index, measured.integrity.detail ?? 'the served model file changed');
    for (const b of measured.breaches) open(b.kind, index, b.detail);
    state.quietWindows = measured.drift.length || measured.error ? 0 : state.quietWindows + 1;
    if (config.quietWindows > 0 && state.quietWindows >= config.quietWindows)
      open(
        'quiet',
        index,
        `${state.quietWindows} windows in a row had fewer than ${config.minInputs} inputs from the served model ` +
          `sha256:${state.serving.modelSha256.slice(0, 12)}…` +
          (measured.otherModels
            ? `; ${measured.otherModels} came from other models: is the server following this monitor?`
            : ''),
      );
  }
  // Decisions being handled finish in this run, and notices are posted; open incidents travel with the state.
  await condition(allHandlersFinished);
  await Promise.allSettled(pendingNotices);
  await continueAsNew<typeof secmlopsMonitor>({ ...input, carried: { ...state, runs: state.runs + 1 } });
}

const FAILURES_BEFORE_INCIDENT = 3;
const INCIDENTS_KEPT = 100;

function unmeasured(since: number, until: number, error: string): WindowMeasurement {
  return {
    since,
    until,
    inputs: 0,
    drift: [],
    flagged: 0,
    breaches: [],
    malformed: 0,
    unreadable: 0,
    otherModels: 0,
    integrity: { ok: false, detail: 'not measured' },
    error,
  };
}

/** The policy's flag-rate threshold, or three times the detector's calibrated FPR. */
function flagRateOf(input: MonitorInput): number | undefined {
  const m = input.policy.monitor!;
  if (!m.detector) return undefined;
  return m.flagRate ?? Math.min(1, 3 * m.detector.fpr);
}

function now(): string {
  return new Date(Date.now()).toISOString();
}
