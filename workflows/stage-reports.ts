// What the pipeline reads from its children's reports: a stage report fit to show while the stage runs, the
// sanitised split the data stage's own result names, and a stage's status before it starts. Pure functions.
import type { Evidence, StageName } from '../policy/index.js';
import type { StageResult, StageStatus } from './messages.js';

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * The sanitised split the data stage's own result names, when it is well-formed. The signer checks the evidence's
 * signature later; here a malformed payload (which no worker signs) must neither crash the workflow task nor reach
 * the train stage, which then fails for want of a sanitised split.
 */
export function sanitisedSplit(
  e: Evidence<'sanitisation'> | undefined,
): { images: string; labels: string; removed: number } | undefined {
  const o = e?.body?.payload?.output;
  const removed = e?.body?.payload?.removed;
  if (!o || !DIGEST.test(String(o.images)) || !DIGEST.test(String(o.labels))) return undefined;
  if (typeof removed !== 'number' || !Number.isInteger(removed)) return undefined;
  return { images: `sha256:${o.images}`, labels: `sha256:${o.labels}`, removed };
}

const STATES = ['pending', 'running', 'waiting', 'blocked', 'passed', 'failed', 'rejected'];
const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * A stage status fit to show: the shape the console and the reports read, at most 64 KiB. Checked apart from the
 * stage's audit trail, which decisions sent by anyone with namespace access make grow: a long trail must not hide
 * the status (and with it the approval form) of a stage that waits.
 */
export function displayableStatus(status: StageStatus): boolean {
  const s = status as Partial<StageStatus> | undefined;
  if (!s || typeof s !== 'object' || !Number.isInteger(s.revision) || !STATES.includes(String(s.state))) return false;
  if (!Array.isArray(s.tasks) || !strings(s.blockers) || !strings(s.findings) || !Array.isArray(s.gates)) return false;
  if (!s.metrics || typeof s.metrics !== 'object' || !Object.values(s.metrics).every((v) => typeof v === 'number'))
    return false;
  if (
    !s.artifacts ||
    typeof s.artifacts !== 'object' ||
    !Object.values(s.artifacts).every((v) => typeof v === 'string')
  )
    return false;
  const a = s.approval;
  if (a !== undefined && (!a || !strings(a.roles) || !strings(a.missingRoles) || !strings(a.approvers))) return false;
  return JSON.stringify(s).length <= 64 * 1024;
}

/** A running stage's audit entries fit to show after the pipeline's: at most 200 entries and 256 KiB. */
export function displayableAudit(audit: unknown): audit is StageResult['audit'] {
  return Array.isArray(audit) && audit.length <= 200 && JSON.stringify(audit).length <= 256 * 1024;
}

export function pendingStage(name: StageName, workflowId: string): StageStatus {
  return {
    name,
    workflowId,
    state: 'pending',
    revision: -1,
    tasks: [],
    blockers: [],
    findings: [],
    metrics: {},
    gates: [],
    artifacts: {},
  };
}
