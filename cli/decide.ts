// Approve or reject from the CLI: sign the decision with the cli channel's key and send it as a Workflow Update.
import { ServiceError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { KeyObject } from 'node:crypto';
import { loadPrivateKey, signDecision } from '../activities/keys.js';
import type { Channel, Decision } from '../policy/index.js';
import { approveUpdate, rejectUpdate, stageWorkflowId, type DecisionAccepted } from '../workflows/messages.js';

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
}

/** A decision the workflow refused, with the workflow's own reason. */
export class DecisionRefused extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DecisionRefused';
  }
}

export async function sendDecision(client: Client, req: DecisionRequest): Promise<DecisionAccepted> {
  const key = req.key ?? (await loadPrivateKey(req.keyPath));
  const decision: Decision = {
    workflowId: req.workflowId,
    stage: req.stage,
    person: req.person,
    channel: req.channel ?? 'cli',
    decision: req.decision,
    comment: req.comment ?? '',
    issuedAt: req.issuedAt ?? new Date().toISOString(),
  };
  const signed = signDecision(decision, key);
  const handle = client.workflow.getHandle(stageWorkflowId(req.workflowId, req.stage));
  const update = req.decision === 'approve' ? approveUpdate : rejectUpdate;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await handle.executeUpdate(update, { args: [signed] });
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
    throw new DecisionRefused(`stage ${req.stage} of ${req.workflowId} is not waiting for approval (it has ${ended ? 'finished' : 'not started'})`);
  }
}

function isAbortedUpdate(e: unknown): boolean {
  const cause = (e as { cause?: { code?: number; details?: string } }).cause;
  return e instanceof ServiceError && cause?.code === 9 && /unexpected workflow task failure/.test(cause.details ?? '');
}
