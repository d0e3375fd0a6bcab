// Approve or reject through any channel: sign the decision with the channel's key, bound to the change the signer
// saw (its subject digest), and send it as a Workflow Update to the stage.
import {
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { KeyObject } from 'node:crypto';
import { loadPrivateKey, signDecision } from '../activities/keys.js';
import type { Channel, Decision } from '../policy/index.js';
import {
  approveUpdate,
  githubCommentUpdate,
  rejectUpdate,
  stageWorkflowId,
  statusQuery,
  type CommentRef,
  type DecisionAccepted,
  type PipelineStatus,
} from '../workflows/messages.js';

export interface DecisionRequest {
  workflowId: string;
  stage: string;
  person: string;
  decision: 'approve' | 'reject';
  comment?: string;
  /** The channel's private key, or the path of its PEM file. */
  keyPath: string;
  key?: KeyObject;
  channel?: Channel;
  /** For tests of refused decisions; defaults to now. */
  issuedAt?: string;
  /**
   * The subject digest of the change the person saw and decides on (the console passes the one it displayed).
   * Undefined: read from the pipeline's status now.
   */
  subjectDigest?: string;
}

/** A decision the workflow refused, with the workflow's own reason. */
export class DecisionRefused extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DecisionRefused';
  }
}

/**
 * A PR comment as a decision: only its ID travels; a worker fetches the comment from GitHub with its own credentials,
 * checks it and signs it with the github channel key no GitHub runner holds.
 */
export async function sendCommentDecision(
  client: Client,
  req: { workflowId: string; stage: string; comment: CommentRef },
): Promise<DecisionAccepted> {
  const handle = client.workflow.getHandle(stageWorkflowId(req.workflowId, req.stage));
  return refusalsNamed(handle, req, () => handle.executeUpdate(githubCommentUpdate, { args: [req.comment] }));
}

export async function sendDecision(client: Client, req: DecisionRequest): Promise<DecisionAccepted> {
  const key = req.key ?? (await loadPrivateKey(req.keyPath));
  const subjectDigest = req.subjectDigest ?? (await currentSubjectDigest(client, req.workflowId, `stage ${req.stage}`));
  const decision: Decision = {
    workflowId: req.workflowId,
    stage: req.stage,
    person: req.person,
    channel: req.channel ?? 'cli',
    decision: req.decision,
    comment: req.comment ?? '',
    issuedAt: req.issuedAt ?? new Date().toISOString(),
    ...(subjectDigest ? { subjectDigest } : {}),
  };
  const signed = signDecision(decision, key);
  const handle = client.workflow.getHandle(stageWorkflowId(req.workflowId, req.stage));
  const update = req.decision === 'approve' ? approveUpdate : rejectUpdate;
  return refusalsNamed(handle, req, () => handle.executeUpdate(update, { args: [signed] }));
}

/** Sends an Update, retrying what the server aborted, and turns the workflow's refusals into DecisionRefused. */
async function refusalsNamed(
  handle: WorkflowHandle,
  req: { workflowId: string; stage: string },
  send: () => Promise<DecisionAccepted>,
): Promise<DecisionAccepted> {
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (e) {
        // The server aborts an Update whose workflow task failed for an internal reason (e.g. UnhandledCommand when
        // the stage's own events arrive at the same moment). Nothing was applied, so sending it again is safe.
        if (attempt >= 5 || !isAbortedUpdate(e)) throw e;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) throw new DecisionRefused(e.cause?.message ?? e.message);
    if (!(e instanceof WorkflowNotFoundError)) throw e;
    // The stage's workflow is not running: tell a stage that ended from one that has not begun.
    const ended = await handle.describe().then(
      (d) => d.status.name !== 'RUNNING',
      () => false,
    );
    throw new DecisionRefused(
      `stage ${req.stage} of ${req.workflowId} is not waiting for approval (it has ${ended ? 'finished' : 'not started'})`,
    );
  }
}

/**
 * The digest of the change the pipeline runs for, as its status shows it (undefined: no such pipeline, or one from
 * before the trust boundary). A decision without one is refused by every stage since then, so a status that cannot
 * be read is an error here, not a decision signed for no change. `stage` names the stage in the refusal.
 */
export async function currentSubjectDigest(
  client: Client,
  workflowId: string,
  stage = 'any stage',
): Promise<string | undefined> {
  let s: PipelineStatus;
  try {
    s = (await client.workflow.getHandle(workflowId).query(statusQuery)) as PipelineStatus;
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return undefined;
    throw new Error(`could not read which change ${workflowId} runs for (${(e as Error).message}); nothing was sent`);
  }
  // Not resolved yet (no policy name): no stage can wait, and a decision signed now would carry no change and be
  // refused by a stage that starts waiting before it arrives. (Runs from before the trust boundary carry no digest
  // but do name their policy.)
  if (!s.subjectDigest && !s.policyName && s.state === 'running')
    throw new DecisionRefused(
      `${stage} of ${workflowId} is not waiting for approval (the pipeline has not resolved its start yet)`,
    );
  return s.subjectDigest;
}

function isAbortedUpdate(e: unknown): boolean {
  const cause = (e as { cause?: { code?: number; details?: string } }).cause;
  return e instanceof ServiceError && cause?.code === 9 && /unexpected workflow task failure/.test(cause.details ?? '');
}
