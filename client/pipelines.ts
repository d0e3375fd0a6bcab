// Typed reads of a pipeline: its status and the policy it runs under, through the queries the workflow defines.
import type { Client } from '@temporalio/client';
import type { Policy } from '../policy/index.js';
import { policyQuery, statusQuery, stageWorkflowId, type PipelineStatus, type StageResult } from '../workflows/messages.js';

export async function pipelineStatus(client: Client, workflowId: string): Promise<PipelineStatus> {
  return (await client.workflow.getHandle(workflowId).query(statusQuery)) as PipelineStatus;
}

export async function pipelinePolicy(client: Client, workflowId: string): Promise<Policy> {
  return client.workflow.getHandle(workflowId).query(policyQuery);
}

export async function stageResult(client: Client, workflowId: string, stage: string): Promise<StageResult> {
  return (await client.workflow.getHandle(stageWorkflowId(workflowId, stage)).query(statusQuery)) as StageResult;
}
