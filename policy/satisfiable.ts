// Approval rules that nobody could ever meet, refused when the policy is read instead of failing a run at a stage.
// The rules are approvals.ts's own (quorumMet, unmeetableApproval), with nobody excluded: the change's author is
// only known, and excluded, when a stage starts.
import { hypotheticalVotes, quorumMet, rolesOf, unmeetableApproval, type Vote } from './approvals.js';
import { Reader, join } from './reader.js';
import type { Approval, Policy } from './types.js';

/** explicit[i]: stage i wrote its approval out (messages then name its fields; else the stage and its default). */
export function checkApprovals(r: Reader, policy: Policy, explicit: boolean[]): void {
  policy.stages.forEach((stage, i) => {
    const a = stage.approval;
    if (!a) return;
    // A default approval has no fields in the file to point at: messages name the stage.
    const field = (key: string, index?: number) => {
      if (!explicit[i]) return join('stages', i);
      const path = join(join(join('stages', i), 'approval'), key);
      return index === undefined ? path : join(path, index);
    };
    const also = explicit[i] ? '' : ` (the default approval of ${stage.name}; give the stage an approval to change it)`;
    const fail = (path: string, why: string): never => r.fail(path, why + also);
    checkApproval(policy, a, field, fail);
    if (a.escalation !== undefined && holders(policy, a.escalation).length === 0)
      fail(
        field('escalation'),
        `role ${roleName(policy, a.escalation)} has no members, so an escalation would reach nobody; add a person to roles.${a.escalation}.members`,
      );
  });
}

function checkApproval(
  policy: Policy,
  a: Approval,
  field: (key: string, index?: number) => string,
  fail: (path: string, why: string) => never,
): void {
  if (a.everyRole) {
    a.roles.forEach((role, j) => {
      if (holders(policy, role).length === 0)
        fail(
          field('roles', j),
          `role ${roleName(policy, role)} has no members, so nobody can give its approval; add a person to roles.${role}.members`,
        );
    });
    // Quorum 0: only the matching of roles to different people, the count is the quorum check's.
    if (!quorumMet({ ...a, quorum: 0 }, votesOfEveryone(policy, a))) {
      const distinct = [...new Set(a.roles.flatMap((role) => holders(policy, role)))];
      const who = a.roles.map((role) => `${role}: ${holders(policy, role).join(', ')}`).join('; ');
      const detail =
        distinct.length === 1
          ? `${distinct[0]} alone holds them all`
          : `no choice of their members gives each role a different person (${who})`;
      fail(
        field('roles'),
        `everyRole needs a different person for each of ${a.roles.join(', ')} (separation of duties), but ${detail}`,
      );
    }
  }
  const eligible = policy.people.filter((p) => rolesOf(policy, p.id).some((role) => a.roles.includes(role)));
  if (eligible.length === 0)
    fail(field('roles'), `nobody holds any of ${a.roles.join(', ')}, so nobody can give this approval`);
  if (eligible.length < a.quorum) {
    const ids = eligible.map((p) => p.id);
    const who = `only ${ids.join(', ')} ${ids.length === 1 ? 'holds' : 'hold'}`;
    fail(
      field('quorum'),
      `a quorum of ${a.quorum} needs ${a.quorum} distinct people holding ${a.roles.join(' or ')}, but ${who} them`,
    );
  }
  // The checks above give the reason in terms of the policy's fields; this keeps them from ever passing a rule
  // the workflow would call unmeetable.
  const why = unmeetableApproval(policy, a, undefined);
  if (why) fail(field('roles'), why);
}

function holders(policy: Policy, role: string): string[] {
  return policy.roles.find((x) => x.id === role)?.members ?? [];
}

function roleName(policy: Policy, role: string): string {
  const name = policy.roles.find((x) => x.id === role)?.name;
  return name ? `${role} (${name})` : role;
}

/** Everyone who may decide approving: what quorumMet must accept for the rule to be meetable at all. */
function votesOfEveryone(policy: Policy, a: Approval): Vote[] {
  return hypotheticalVotes(
    policy,
    a,
    policy.people.map((p) => p.id),
  ).filter((v) => v.roles.length > 0);
}
