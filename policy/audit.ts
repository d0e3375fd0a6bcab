// The audit trail: one hash chain per pipeline. Every entry carries the SHA-256 of the entry before it (the first
// one the pipeline's genesis digest), so removing, reordering, inserting or editing an entry breaks the chain.
// Entries that hold a decision also carry the channel's signature, which covers everything the person decided.
import { digestOf } from './canonical.js';
import type { Subject } from './subject.js';

export type AuditKind = 'start' | 'task' | 'gate' | 'decision' | 'refused' | 'escalated' | 'deadline' | 'end';

export interface AuditEntry {
  /** Workflow time, ISO 8601. */
  at: string;
  /** A stage name, or 'pipeline' for the pipeline's own entries. */
  stage: string;
  kind: AuditKind;
  person?: string;
  roles: string[];
  channel?: string;
  decision?: 'approve' | 'reject';
  comment?: string;
  issuedAt?: string;
  signature?: string;
  /** The subject digest a decision was signed for (decision v2); on the start entry, the pipeline's. */
  subjectDigest?: string;
  /** On the start entry: the change, as the worker that checked the start resolved it. */
  subject?: Subject;
  /** Why a decision was refused, what an escalation said, or a task's or gate's outcome. */
  reason?: string;
  /** The task or gate an entry is about, and its outcome ('done', 'failed', 'passed', 'rejected', ...). */
  name?: string;
  state?: string;
  /** SHA-256 of the previous entry (chained trails); absent in trails recorded before the chain existed. */
  prev?: string;
}

/** Bounds on what a client can make a workflow record: refusals past the cap are counted, not stored. */
export const AUDIT_LIMITS = { text: 500, refusalsPerStage: 20 } as const;

export function genesisDigest(pipelineId: string): string {
  return digestOf('secmlops-audit-genesis-v1', { pipelineId });
}

export function entryDigest(e: AuditEntry): string {
  return digestOf('secmlops-audit-v1', e);
}

/** Appends an entry to a chain whose last digest is head; returns the new head. */
export function appendEntry(trail: AuditEntry[], head: string, entry: Omit<AuditEntry, 'prev'>): string {
  const chained: AuditEntry = { ...entry, prev: head };
  trail.push(chained);
  return entryDigest(chained);
}

/** The head after the given entries, or why they do not form a chain starting at the pipeline's genesis. */
export function checkChain(pipelineId: string, entries: AuditEntry[]): { head: string } | { problem: string } {
  let head = genesisDigest(pipelineId);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e === null || typeof e !== 'object') return { problem: `audit entry ${i} is not an object` };
    if (e.prev !== head) {
      return {
        problem: `audit entry ${i} (${String(e.kind)} at ${String(e.at)}) does not follow entry ${i - 1}: the chain is broken (an entry was removed, inserted, moved or edited)`,
      };
    }
    try {
      head = entryDigest(e);
    } catch (err) {
      return { problem: `audit entry ${i} has no canonical form: ${(err as Error).message}` };
    }
  }
  return { head };
}

/** Cuts client-supplied text to the bound, saying so. */
export function bounded(text: unknown, max: number = AUDIT_LIMITS.text): string | undefined {
  if (typeof text !== 'string') return undefined;
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters cut)`;
}
