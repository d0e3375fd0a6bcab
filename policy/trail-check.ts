// The audit trail's checks: the chain, the order of entries, and every stage's approval rule from the channel-signed
// decisions in it. Shared by the release signer, `verify` and the GitHub verdict (through checkRelease) and by the
// checks of exported trails.
import { checkChain, type AuditEntry } from './audit.js';
import { verifyDecision } from './decision.js';
import { findPerson, isAuthor, quorumMet, rolesOf, type Vote } from './approvals.js';
import { own } from './own.js';
import { subjectDigest, type Subject } from './subject.js';
import type { Approval, Channel, Policy } from './types.js';

const SKEW_MS = 5 * 60_000;
const MAX_AGE_MS = 24 * 3_600_000;

export interface TrailCheck {
  pipelineId: string;
  policy: Policy;
  subject: Subject;
  audit: AuditEntry[];
  /**
   * 'release': the trail as the release signer sees it — every earlier stage ended passed and the release stage's
   * approval is met (it approves before it signs). 'passed': a pipeline that passed — every stage ended passed once,
   * every approval met, and the pipeline's own end entry closes the trail. 'complete': a finished pipeline's trail,
   * whatever its verdict — it must close with the pipeline's end entry (whose state is `state`), stages end in order
   * and every stage that ended passed met its approval rule.
   */
  upTo: 'release' | 'passed' | 'complete';
  /** With 'complete': the verdict the document claims, which the trail's end entry must agree with. */
  state?: string;
}

/** Problems with the chain, its order and every stage's approval rule; empty when the trail holds. */
export function checkTrail(t: TrailCheck): string[] {
  const problems: string[] = [];
  // A finished trail that claims a pass is held to everything a pass means.
  const mode: TrailCheck['upTo'] = t.upTo === 'complete' && t.state === 'passed' ? 'passed' : t.upTo;
  const audit = Array.isArray(t.audit) ? t.audit : [];
  if (audit.length === 0) return ['the audit trail is empty'];
  const chain = checkChain(t.pipelineId, audit);
  if ('problem' in chain) problems.push(chain.problem);
  const digest = subjectDigest(t.subject);
  const first = audit[0];
  if (first.kind !== 'start' || first.stage !== 'pipeline')
    problems.push('the audit trail does not begin with the pipeline’s start entry');
  else if (first.subjectDigest !== digest) problems.push('the audit trail’s start entry is for another change');
  // The monitor stage keeps its own trail in its own workflow, which outlives the pipeline: the pipeline's trail
  // has no entries for it and may have none.
  const stages = t.policy.stages.filter((s) => s.name !== 'monitor');
  const order = stages.map((s) => s.name as string);
  let last = -1;
  let lastAt = -Infinity;
  audit.forEach((e, i) => {
    const at = Date.parse(e.at);
    if (Number.isNaN(at)) problems.push(`audit entry ${i} has no valid time`);
    else if (at < lastAt)
      problems.push(`audit entry ${i} (${e.kind}, ${e.stage}) is dated before the entry it follows`);
    else lastAt = at;
    if (e.stage === 'pipeline') return;
    const k = order.indexOf(e.stage);
    if (k < 0) problems.push(`audit entry ${i} names stage "${e.stage}", which the policy does not run`);
    else if (k < last) problems.push(`audit entry ${i} (${e.kind}, ${e.stage}) comes after entries of a later stage`);
    else last = k;
  });
  if (mode !== 'release') {
    // A finished pipeline's trail closes with its own end entry; nothing may be cut from its end.
    const close = audit[audit.length - 1];
    if (close.stage !== 'pipeline' || close.kind !== 'end')
      problems.push('the audit trail does not close with the pipeline’s end entry (entries cut from its end?)');
    else if (mode === 'passed' && close.state !== 'passed')
      problems.push(`the pipeline ended ${String(close.state)}, not passed`);
    else if (t.state !== undefined && close.state !== t.state)
      problems.push(`the document says the pipeline ${t.state}, but its trail ends ${String(close.state)}`);
  }
  let stopped = false;
  for (const stage of stages) {
    const entries = audit.filter((e) => e.stage === stage.name);
    const ends = entries.filter((e) => e.kind === 'end');
    const isRelease = stage.name === 'release';
    const mustPass =
      mode === 'release' ? !isRelease : mode === 'passed' || (ends.length > 0 && ends[0].state === 'passed');
    if (mode === 'release') {
      if (isRelease && ends.length > 0) problems.push('the release stage ended before it was signed');
      if (!isRelease && (ends.length !== 1 || ends[0].state !== 'passed')) {
        problems.push(
          `stage ${stage.name} did not end passed exactly once (${ends.map((e) => e.state).join(', ') || 'no end entry'})`,
        );
      }
    } else {
      if (mode === 'passed' && (ends.length !== 1 || ends[0].state !== 'passed')) {
        problems.push(
          `stage ${stage.name} did not end passed exactly once (${ends.map((e) => e.state).join(', ') || 'no end entry'})`,
        );
      }
      if (ends.length > 1) problems.push(`stage ${stage.name} ended ${ends.length} times`);
      // After a stage that did not pass, no later stage runs.
      if (stopped && entries.length)
        problems.push(`stage ${stage.name} has entries after an earlier stage stopped the pipeline`);
      if (ends.length === 0 || ends[0].state !== 'passed') stopped = true;
    }
    if (ends.length === 1 && entries[entries.length - 1] !== ends[0])
      problems.push(`stage ${stage.name} has entries after its end`);
    const decisions = entries.filter((e) => e.kind === 'decision');
    if (!stage.approval) {
      if (decisions.length)
        problems.push(`stage ${stage.name} needs no approval, yet the trail holds decisions for it`);
      continue;
    }
    if (!mustPass && !(mode === 'release' && isRelease)) continue;
    problems.push(...approvalProblems(t, stage.name, stage.approval, entries, digest));
  }
  return problems;
}

function approvalProblems(
  t: TrailCheck,
  stage: string,
  approval: Approval,
  entries: AuditEntry[],
  digest: string,
): string[] {
  const problems: string[] = [];
  const where = `stage ${stage}`;
  const waiting = entries.findIndex((e) => e.kind === 'task' && e.name === 'approval' && e.state === 'running');
  const votes: Vote[] = [];
  entries.forEach((e, i) => {
    if (e.kind !== 'decision') return;
    const who = `${where}: the decision by ${String(e.person)}`;
    if (waiting < 0 || i < waiting) problems.push(`${who} is recorded before the stage waited for approval`);
    const key = own(t.policy.channels, e.channel)?.publicKey;
    if (!key)
      return problems.push(`${who} came through channel ${String(e.channel)}, which has no key pinned in the policy`);
    if (e.subjectDigest !== digest) return problems.push(`${who} was signed for another change`);
    const signed = {
      workflowId: t.pipelineId,
      stage,
      person: e.person ?? '',
      channel: e.channel as Channel,
      decision: e.decision ?? 'approve',
      comment: e.comment ?? '',
      issuedAt: e.issuedAt ?? '',
      subjectDigest: e.subjectDigest,
      signature: e.signature ?? '',
    };
    if (!verifyDecision(signed, key))
      return problems.push(`${who} does not verify against the ${String(e.channel)} channel's key`);
    const person = findPerson(t.policy, e.person);
    if (!person) return problems.push(`${who}: no such person in the policy`);
    const roles = rolesOf(t.policy, person.id).filter((r) => approval.roles.includes(r));
    if ([...roles].sort().join(',') !== [...(e.roles ?? [])].sort().join(',')) {
      problems.push(
        `${who} is recorded with roles [${(e.roles ?? []).join(', ')}], but the policy gives [${roles.join(', ')}]`,
      );
    }
    if (roles.length === 0) problems.push(`${who}: ${person.id} holds none of ${approval.roles.join(', ')}`);
    if (isAuthor(person, t.subject.author))
      problems.push(`${who}: ${person.id} is the change's author (separation of duties)`);
    if (votes.some((v) => v.person === person.id)) problems.push(`${who} is a second decision by the same person`);
    if (e.decision !== 'approve') problems.push(`${who} rejected the stage`);
    const issued = Date.parse(signed.issuedAt);
    const at = Date.parse(e.at);
    if (Number.isNaN(issued) || at < issued - SKEW_MS || at > issued + MAX_AGE_MS) {
      problems.push(`${who} is recorded at ${e.at}, outside the validity of its signed issuedAt ${signed.issuedAt}`);
    }
    votes.push({ ...signed, roles });
  });
  if (!quorumMet(approval, votes)) {
    const by = votes.filter((v) => v.decision === 'approve').map((v) => `${v.person} (${v.roles.join('+')})`);
    problems.push(
      `${where}: the approval rule (${approval.quorum} of ${approval.roles.join(', ')}${approval.everyRole ? ', a different person per role' : ''}) is not met; approved by ${by.join(', ') || 'nobody'}`,
    );
  }
  return problems;
}
