// Typed reads of a pipeline: its status and the policy it runs under, through the queries the workflow defines.
import type { Client } from '@temporalio/client';
import { TASK_QUEUE } from '../workflows/messages.js';
import type { Policy } from '../policy/index.js';
import {
  policyQuery,
  statusQuery,
  stageWorkflowId,
  type PipelineStatus,
  type StageResult,
} from '../workflows/messages.js';

export async function pipelineStatus(client: Client, workflowId: string): Promise<PipelineStatus> {
  return (await client.workflow.getHandle(workflowId).query(statusQuery)) as PipelineStatus;
}

export async function pipelinePolicy(client: Client, workflowId: string): Promise<Policy> {
  return client.workflow.getHandle(workflowId).query(policyQuery);
}

export async function stageResult(client: Client, workflowId: string, stage: string): Promise<StageResult> {
  return (await client.workflow.getHandle(stageWorkflowId(workflowId, stage)).query(statusQuery)) as StageResult;
}

/**
 * Refuses a workflow under a pipeline's ID that our workers do not run (another type, or another task queue some
 * namespace user polls): its queries could answer anything. Channels check this before they sign on its word.
 */
export async function ourPipeline(client: Client, workflowId: string): Promise<void> {
  const d = await client.workflow.getHandle(workflowId).describe();
  if (d.type !== 'secmlopsPipeline' || d.taskQueue !== TASK_QUEUE) {
    throw new Error(
      `${workflowId} is a ${d.type} on task queue ${d.taskQueue}, not a SecMLOps pipeline run by its workers`,
    );
  }
}
