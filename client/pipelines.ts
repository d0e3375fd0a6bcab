// Typed reads of a pipeline: its status and the policy it runs under, through the queries the workflow defines.
import type { Client, WorkflowClient } from '@temporalio/client';
import type { Policy } from '../policy/index.js';
import { displayableAudit, displayableStatus } from '../workflows/stage-reports.js';
import { TASK_QUEUE, policyQuery, statusQuery, type PipelineStatus, type StageResult } from '../workflows/messages.js';

/**
 * A pipeline's status with its running stage's progress: the pipeline's own status names the stage's run, and that
 * run is queried (stages no longer signal their progress to the pipeline). Every channel reads pipelines here.
 */
export async function pipelineStatus(client: Client, workflowId: string): Promise<PipelineStatus> {
  return withRunningStage(
    client.workflow,
    (await client.workflow.getHandle(workflowId).query(statusQuery)) as PipelineStatus,
  );
}

/**
 * Overlays the running stage's own status and audit entries, queried from the run the pipeline started (a workflow
 * someone else started under the stage's ID is another run, and is not asked). Display only: gates, verdicts and the
 * release read the stages' results inside the pipeline. The status and the audit entries are checked apart: decisions
 * anyone can send make the trail long, and a long trail is left out rather than hiding the status. When the stage
 * cannot answer within 5 s (it just finished, its worker is busy or gone), the pipeline's own view is returned.
 */
export async function withRunningStage(workflows: WorkflowClient, s: PipelineStatus): Promise<PipelineStatus> {
  const i = s.stages.findIndex((st) => st.state === 'running' && st.runId);
  if (i < 0) return s;
  const { name, workflowId, runId } = s.stages[i];
  let r: StageResult;
  try {
    r = (await workflows.connection.withDeadline(Date.now() + 5000, () =>
      workflows.getHandle(workflowId, runId).query(statusQuery),
    )) as StageResult;
  } catch {
    return s;
  }
  if (r?.status?.name !== name || !displayableStatus(r.status)) return s;
  const stages = s.stages.map((st, j) => (j === i ? { ...r.status, workflowId, runId } : st));
  return { ...s, stages, audit: displayableAudit(r.audit) ? [...s.audit, ...r.audit] : s.audit };
}

export async function pipelinePolicy(client: Client, workflowId: string): Promise<Policy> {
  return client.workflow.getHandle(workflowId).query(policyQuery);
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
