// Starting or attaching to a pipeline, for every channel. A start carries proof (a signed request, or a GitHub
// Actions OIDC token) and a policy reference; the workers resolve both and never take a policy from the starter.
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { sign, type KeyObject } from 'node:crypto';
import {
  canonicalStart,
  type ClaimedSubject,
  type CliStart,
  type PipelineInput,
  type StartRequest,
} from '../policy/index.js';
import { TASK_QUEUE } from '../workflows/messages.js';
import { secmlopsPipeline } from '../workflows/pipeline.js';

export type PipelineHandle = WorkflowHandle<typeof secmlopsPipeline>;

/** Signs a start request for one pipeline with a CLI start key (one the workers pin in SECMLOPS_START_KEYS). */
export function signStart(r: Omit<StartRequest, 'v' | 'issuedAt'> & { issuedAt?: string }, key: KeyObject): CliStart {
  const request: StartRequest = {
    v: 1,
    workflowId: r.workflowId,
    subject: r.subject,
    policyRef: r.policyRef,
    issuedAt: r.issuedAt ?? new Date().toISOString(),
  };
  return { kind: 'cli', request, signature: sign(null, canonicalStart(request), key).toString('base64') };
}

export interface CliStartOptions {
  workflowId: string;
  subject: ClaimedSubject;
  policyRef: string;
  key: KeyObject;
  url?: string;
  /** Attach to a running pipeline with this ID instead of failing (re-runs of `secmlops run`). */
  attach?: boolean;
}

/** Starts a pipeline with a signed CLI start; with `attach`, a running one with the same ID is returned instead. */
export interface Started {
  handle: PipelineHandle;
  /** The run started (undefined when attached to a running one). */
  runId?: string;
  attached: boolean;
}

export async function startSigned(client: Client, o: CliStartOptions): Promise<Started> {
  const input: PipelineInput = { start: signStart(o, o.key), ...(o.url ? { url: o.url } : {}) };
  return startWithInput(client, o.workflowId, input, o.attach ?? false);
}

export async function startWithInput(
  client: Client,
  workflowId: string,
  input: PipelineInput,
  attach: boolean,
): Promise<Started> {
  try {
    const handle = await client.workflow.start(secmlopsPipeline, {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
    });
    return { handle, runId: handle.firstExecutionRunId, attached: false };
  } catch (e) {
    if (!attach || !(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    return { handle: client.workflow.getHandle<typeof secmlopsPipeline>(workflowId), attached: true };
  }
}
