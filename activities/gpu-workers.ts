// How many gpu workers poll the gpu queue now: `evaluate.shards: auto` cuts the attack suite into that many parts.
import { Context } from '@temporalio/activity';
import proto from '@temporalio/proto';
import { GPU_TASK_QUEUE } from '../workflows/messages.js';

/**
 * Distinct identities that polled the gpu queue for activities recently (the server keeps pollers for a few
 * minutes), at least 1 and at most 64. Anyone who can reach the namespace can poll the queue too and so raise the
 * count: that costs only more parts, each still signed by a worker and merged only if they tile the images once.
 */
export async function countGpuWorkers(): Promise<number> {
  const ctx = Context.current();
  const response = await ctx.client.workflowService.describeTaskQueue({
    namespace: ctx.info.workflowNamespace,
    taskQueue: { name: GPU_TASK_QUEUE, kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  const identities = new Set((response.pollers ?? []).map((p) => p.identity ?? ''));
  return Math.min(64, Math.max(1, identities.size));
}
