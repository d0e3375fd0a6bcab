// An incident's resolution is an approval like every other: signed by a channel, checked by the same pure
// checkDecision against the monitor stage's approval (R8 by default), and bound to the incident and to the model
// that was served when it opened, so a decision cannot be replayed on another incident or another model.
import { checkDecision, type Vote } from './approvals.js';
import { DEFAULT_APPROVALS } from './defaults.js';
import type { SignedDecision } from './decision.js';
import type { Approval, Policy } from './types.js';

export interface IncidentContext {
  policy: Policy;
  /** The monitor workflow's ID. */
  workflowId: string;
  incident: number;
  /** SHA-256 (hex) of the model served when the incident opened. */
  modelSha256: string;
  /** Why the incident takes no decision now (resolved), or undefined while it is open. */
  notWaiting?: string;
  votes: Vote[];
  now: number;
  /** The change's author (GitHub login or person id): separation of duties. */
  author?: string;
}

const ATTESTATION_REF = /^sha256:[0-9a-f]{64}$/;

export function incidentStage(incident: number): string {
  return `incident-${incident}`;
}

/** What an incident decision's subjectDigest names: the served model. */
export function incidentSubject(modelSha256: string): string {
  return `model:sha256:${modelSha256}`;
}

export function monitorApproval(policy: Policy): Approval {
  return policy.stages.find((s) => s.name === 'monitor')?.approval ?? DEFAULT_APPROVALS.monitor;
}

/** Why the decision must be refused, or undefined to accept it. Synchronous and pure, for Update validators. */
export function checkIncidentDecision(ctx: IncidentContext, d: SignedDecision): string | undefined {
  const why = checkDecision(
    {
      policy: ctx.policy,
      approval: monitorApproval(ctx.policy),
      workflowId: ctx.workflowId,
      stage: incidentStage(ctx.incident),
      subjectDigest: incidentSubject(ctx.modelSha256),
      notWaiting: ctx.notWaiting,
      blockers: [],
      votes: ctx.votes,
      now: ctx.now,
      ...(ctx.author ? { author: ctx.author } : {}),
    },
    d,
  );
  if (why) return why;
  const r = d.resolution;
  if (d.decision === 'reject') return r === undefined ? undefined : 'a rejection carries no resolution';
  if (!r || typeof r !== 'object') return 'an approval of an incident must say how it is resolved: rollback or retrain';
  if (r.action === 'retrain') return Object.keys(r).length === 1 ? undefined : 'a retrain resolution has no options';
  if (r.action !== 'rollback') return `unknown resolution "${String((r as { action?: unknown }).action)}"`;
  if (typeof r.attestation !== 'string' || !ATTESTATION_REF.test(r.attestation))
    return 'a rollback names the earlier release by its attestation, sha256:<64 hex digits>';
  return undefined;
}
