// Who may start a federation: the same CLI start keys the workers pin for pipelines (SECMLOPS_START_KEYS). The
// starter signs the workflow ID and the policy reference; the server's first activity and every client check it
// against the workflow that actually called them, so a workflow anyone started in the namespace cannot make the
// clients train (and, without secure aggregation, hand over their individual updates).
import { ApplicationFailure, Context } from '@temporalio/activity';
import { sign, type KeyObject } from 'node:crypto';
import { canonicalJson, verifySignature, type FederatedConfig } from '../policy/index.js';

export interface FederationStart {
  v: 1;
  workflowId: string;
  policy: string;
  issuedAt: string;
}

export interface SignedFederationStart {
  start: FederationStart;
  signature: string;
}

/** How long a signed start can begin a federation: a replay under a reused workflow ID is refused after this. */
export const START_VALIDITY_MS = 24 * 3600_000;
const bytesOf = (s: FederationStart) => Buffer.from(`secmlops-federation-start-v1\n${canonicalJson(s)}`);

export function signFederationStart(key: KeyObject, workflowId: string, policy: string): SignedFederationStart {
  const start: FederationStart = { v: 1, workflowId, policy, issuedAt: new Date().toISOString() };
  return { start, signature: sign(null, bytesOf(start), key).toString('base64') };
}

/** Refuses (non-retryable) unless a pinned start key signed this start for the calling workflow and this policy. */
/** How long a started federation's later activities accept its start: its rounds at their timeout, thrice over. */
export function startValidity(c: FederatedConfig): number {
  return Math.max(START_VALIDITY_MS, 3 * c.rounds * c.roundTimeoutMs);
}

export function checkFederationStart(
  signed: unknown,
  startKeys: string[],
  policy: string,
  validityMs = START_VALIDITY_MS,
  now = Date.now(),
): void {
  const refuse = (why: string) => {
    throw ApplicationFailure.nonRetryable(`federation start refused: ${why}`, 'FederationStartRefused');
  };
  const s = signed as SignedFederationStart | undefined;
  if (!s || typeof s !== 'object' || !s.start || typeof s.signature !== 'string') return refuse('no signed start');
  const ok = startKeys.some((k) => verifySignature(s.signature, bytesOf(s.start), k));
  if (!ok) return refuse('not signed by a start key this worker pins (SECMLOPS_START_KEYS)');
  const calling = Context.current().info.workflowExecution?.workflowId;
  if (s.start.v !== 1 || s.start.workflowId !== calling)
    return refuse(`signed for workflow ${String(s.start.workflowId)}, not ${String(calling)}`);
  if (s.start.policy !== policy) return refuse(`signed for policy ${String(s.start.policy)}, not ${policy}`);
  const age = now - Date.parse(s.start.issuedAt);
  if (!(age >= -60_000 && age <= validityMs))
    return refuse(`issued at ${String(s.start.issuedAt)}, longer ago than this federation may run`);
}
