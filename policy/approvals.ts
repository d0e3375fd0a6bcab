import { verifyDecision, type SignedDecision } from './decision.js';
import { own } from './own.js';
import type { Approval, Person, Policy } from './types.js';

/** A decision the workflow accepted, as kept in the audit trail. */
export interface Vote extends SignedDecision {
  /** The person's roles among those the approval names. */
  roles: string[];
}

export interface DecisionContext {
  policy: Policy;
  approval: Approval;
  /** The pipeline's workflow ID, which every signature covers. */
  workflowId: string;
  stage: string;
  /** GitHub login (or person id) of the change's author: separation of duties. */
  author?: string;
  /** subjectDigest() of the change: required on every decision (v2); undefined accepts v1 (runs recorded before). */
  subjectDigest?: string;
  /** Why the stage is not accepting decisions now, or undefined when it is waiting for them. */
  notWaiting?: string;
  /** Open findings that forbid approval (rejecting stays possible). */
  blockers: string[];
  votes: Vote[];
  /** Workflow time in ms. */
  now: number;
}

const FUTURE_SKEW_MS = 5 * 60_000;
const MAX_AGE_MS = 24 * 3_600_000;

export function rolesOf(policy: Policy, personId: string): string[] {
  return policy.roles.filter((r) => r.members.includes(personId)).map((r) => r.id);
}

export function findPerson(policy: Policy, personId: unknown): Person | undefined {
  return typeof personId === 'string' ? policy.people.find((p) => p.id === personId) : undefined;
}

/** The approvals these people could give, each with the approval's roles they hold: what-if input for quorumMet. */
export function hypotheticalVotes(policy: Policy, approval: Approval, people: string[]): Vote[] {
  return people.map((person) => ({
    person,
    roles: rolesOf(policy, person).filter((r) => approval.roles.includes(r)),
    workflowId: '',
    stage: '',
    channel: 'cli',
    decision: 'approve',
    comment: '',
    issuedAt: '',
    signature: '',
  }));
}

/**
 * Why no set of decisions can ever meet the approval once the change's author is excluded, or undefined when one
 * can: a stage that could only wait until its deadline fails at once instead, saying who is missing.
 */
export function unmeetableApproval(policy: Policy, approval: Approval, author: string | undefined): string | undefined {
  const eligible = policy.people.filter(
    (p) => !isAuthor(p, author) && rolesOf(policy, p.id).some((r) => approval.roles.includes(r)),
  );
  const excluded = policy.people.filter((p) => isAuthor(p, author)).map((p) => p.id);
  const why = excluded.length ? ` (${excluded.join(', ')} excluded as the change's author)` : '';
  if (eligible.length < approval.quorum) {
    return `the approval needs ${approval.quorum} distinct people holding ${approval.roles.join(' or ')}, but only ${eligible.length} can decide${why}`;
  }
  if (approval.everyRole) {
    const votes = hypotheticalVotes(
      policy,
      approval,
      eligible.map((p) => p.id),
    );
    if (!quorumMet(approval, votes)) {
      const uncovered = approval.roles.filter((r) => !votes.some((v) => v.roles.includes(r)));
      const detail = uncovered.length
        ? `nobody who may decide holds ${uncovered.join(', ')}`
        : 'the roles cannot each get a different person';
      return `the approval needs a different person for each of ${approval.roles.join(', ')}, but ${detail}${why}`;
    }
  }
  return undefined;
}

export function isAuthor(person: Person, author: string | undefined): boolean {
  if (!author) return false;
  const a = author.toLowerCase();
  return person.id.toLowerCase() === a || person.github?.toLowerCase() === a;
}

/**
 * Why a decision must be refused, or undefined to accept it. Synchronous and pure so an Update validator can
 * call it: every check fails closed, and the reason goes back to the caller. `verify` may be a DecisionVerifier's
 * memo (the same check, remembered), so a decision the validator accepted is not verified again by the handler.
 */
export function checkDecision(
  ctx: DecisionContext,
  d: SignedDecision,
  verify: (d: SignedDecision, publicKeyBase64: string) => boolean = verifyDecision,
): string | undefined {
  if (d === null || typeof d !== 'object') return 'the decision is not an object';
  for (const k of ['workflowId', 'stage', 'person', 'channel', 'decision', 'issuedAt', 'signature'] as const) {
    if (typeof d[k] !== 'string' || d[k].length === 0) return `the decision has no ${k}`;
  }
  if (typeof d.comment !== 'string') return 'the decision has no comment text (an empty string is allowed)';
  if (d.decision !== 'approve' && d.decision !== 'reject')
    return `decision must be "approve" or "reject", not "${String(d.decision)}"`;
  if (d.workflowId !== ctx.workflowId)
    return `the decision was signed for workflow ${d.workflowId}, not ${ctx.workflowId}`;
  if (d.stage !== ctx.stage) return `the decision was signed for stage ${d.stage}, not ${ctx.stage}`;
  if (ctx.subjectDigest !== undefined) {
    if (typeof d.subjectDigest !== 'string')
      return 'the decision is not bound to a change (no subjectDigest: a v1 decision); sign it again';
    if (d.subjectDigest !== ctx.subjectDigest)
      return 'the decision was signed for another change (its subjectDigest is not this run’s: another commit?)';
  }
  // The stage's own state is checked before the signature: a client retrying until the stage waits, or a flood of
  // decisions for a stage that takes none, costs no Ed25519 verification (pure JavaScript in the sandbox).
  if (ctx.notWaiting) return `stage ${ctx.stage} is not waiting for approval (${ctx.notWaiting})`;
  const channel = own(ctx.policy.channels, d.channel);
  if (!channel)
    return `channel "${d.channel}" has no public key pinned in the policy, so its decisions cannot be trusted`;
  if (!verify(d, channel.publicKey))
    return `the signature does not verify against the ${d.channel} channel's public key`;
  const issued = Date.parse(d.issuedAt);
  if (Number.isNaN(issued)) return `issuedAt "${d.issuedAt}" is not a date`;
  if (issued > ctx.now + FUTURE_SKEW_MS) return `issuedAt ${d.issuedAt} is in the future`;
  if (issued < ctx.now - MAX_AGE_MS) return `issuedAt ${d.issuedAt} is more than a day old; sign a fresh decision`;
  const person = findPerson(ctx.policy, d.person);
  if (!person) return `unknown person "${d.person}"`;
  const roles = rolesOf(ctx.policy, person.id).filter((r) => ctx.approval.roles.includes(r));
  if (roles.length === 0)
    return `${person.id} holds none of the roles this stage needs (${ctx.approval.roles.join(', ')})`;
  if (isAuthor(person, ctx.author))
    return `${person.id} is the author of this change and cannot decide on it (separation of duties)`;
  if (ctx.votes.some((v) => v.person === person.id)) return `${person.id} has already decided on stage ${ctx.stage}`;
  if (d.decision === 'approve' && ctx.blockers.length > 0)
    return `stage ${ctx.stage} cannot be approved while it has open findings: ${ctx.blockers.join('; ')}`;
  return undefined;
}

/** Quorum of distinct people, and with everyRole a different approver for every role (bipartite matching). */
export function quorumMet(approval: Approval, votes: Vote[]): boolean {
  const approvers = votes.filter((v) => v.decision === 'approve');
  if (new Set(approvers.map((v) => v.person)).size < approval.quorum) return false;
  if (!approval.everyRole) return true;
  const assign = (roleIndex: number, used: Set<string>): boolean => {
    if (roleIndex === approval.roles.length) return true;
    const role = approval.roles[roleIndex];
    return approvers.some(
      (v) => !used.has(v.person) && v.roles.includes(role) && assign(roleIndex + 1, new Set([...used, v.person])),
    );
  };
  return assign(0, new Set());
}

/** Roles still lacking an approver, for the status and the printed hints. */
export function missingRoles(approval: Approval, votes: Vote[]): string[] {
  const covered = new Set(votes.filter((v) => v.decision === 'approve').flatMap((v) => v.roles));
  return approval.roles.filter((r) => !covered.has(r));
}
