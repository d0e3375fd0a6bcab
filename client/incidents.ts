// Resolving a monitor's incident through any channel: the decision is signed with the channel's key, bound to the
// incident and to the model that was served when it opened, and carries the resolution it chose.
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { KeyObject } from 'node:crypto';
import { loadPrivateKey, signDecision } from '../activities/keys.js';
import {
  incidentStage,
  incidentSubject,
  type Channel,
  type Decision,
  type IncidentResolution,
} from '../policy/index.js';
import { TASK_QUEUE, stageWorkflowId } from '../workflows/messages.js';
import {
  monitorQuery,
  resolveIncidentUpdate,
  type IncidentAccepted,
  type MonitorStatus,
} from '../workflows/monitor-messages.js';
import { DecisionRefused } from './decisions.js';

export interface IncidentDecisionRequest {
  pipelineId: string;
  incident: number;
  person: string;
  /** approve with a resolution, or reject (dismiss: a false alarm). */
  decision: 'approve' | 'reject';
  resolution?: IncidentResolution;
  comment?: string;
  keyPath: string;
  key?: KeyObject;
  channel?: Channel;
  /** The served model the person saw the incident for (hex); read from the monitor when absent. */
  modelSha256?: string;
  issuedAt?: string;
}

export async function monitorStatus(client: Client, pipelineId: string): Promise<MonitorStatus> {
  return client.workflow.getHandle(stageWorkflowId(pipelineId, 'monitor')).query(monitorQuery);
}

/** The pipeline's monitor as our workers run it: a look-alike on another task queue is not shown or decided on. */
export async function ourMonitor(client: Client, pipelineId: string): Promise<void> {
  const id = stageWorkflowId(pipelineId, 'monitor');
  const d = await client.workflow.getHandle(id).describe();
  const parent = d.parentExecution;
  const not = `${id} is not the monitor our workers run for ${pipelineId}`;
  if (d.type !== 'secmlopsMonitor' || d.taskQueue !== TASK_QUEUE || parent?.workflowId !== pipelineId)
    throw new Error(`${not}: it is a ${d.type} on task queue ${d.taskQueue}`);
  // The parent run itself, not a look-alike started under the same ID when the pipeline's ID was free.
  const p = await client.workflow.getHandle(pipelineId, parent.runId ?? undefined).describe();
  if (p.type !== 'secmlopsPipeline' || p.taskQueue !== TASK_QUEUE)
    throw new Error(`${not}: its parent run is a ${p.type} on task queue ${p.taskQueue}`);
}

export async function sendIncidentDecision(client: Client, req: IncidentDecisionRequest): Promise<IncidentAccepted> {
  const key = req.key ?? (await loadPrivateKey(req.keyPath));
  const monitorId = stageWorkflowId(req.pipelineId, 'monitor');
  const model =
    req.modelSha256 ??
    (await monitorStatus(client, req.pipelineId)).incidents.find((i) => i.id === req.incident)?.modelSha256;
  if (!model) throw new DecisionRefused(`${monitorId} has no incident ${req.incident}`);
  const decision: Decision = {
    workflowId: monitorId,
    stage: incidentStage(req.incident),
    person: req.person,
    channel: req.channel ?? 'cli',
    decision: req.decision,
    comment: req.comment ?? '',
    issuedAt: req.issuedAt ?? new Date().toISOString(),
    subjectDigest: incidentSubject(model),
    ...(req.resolution ? { resolution: req.resolution } : {}),
  };
  try {
    return await client.workflow
      .getHandle(monitorId)
      .executeUpdate(resolveIncidentUpdate, { args: [signDecision(decision, key)] });
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError) throw new DecisionRefused(e.cause?.message ?? e.message);
    throw e;
  }
}
