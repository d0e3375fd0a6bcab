// SecMLOps gate: waits (long-polling Temporal) for the PR's pipeline to finish or a timeout, writes the job summary,
// and fails the step when the verdict is not a pass, naming the failed gates.
import * as core from '@actions/core';
import { pipelineId } from '../../../cli/subject.js';
import { connectFromInputs, messageOf, readContext, runUrl } from '../../shared/connect.js';
import { subjectFromPullRequest } from '../../shared/events.js';
import { TASK_QUEUE } from '../../../workflows/messages.js';
import { awaitOutcome, settle, timeoutInput } from '../../shared/verdict.js';

export async function run(): Promise<void> {
  try {
    const timeout = timeoutInput('timeout', '6h');
    let id = core.getInput('workflow-id');
    if (!id) {
      // The same ID the start action derived from the PR (one pipeline per PR).
      const ctx = await readContext();
      id = pipelineId('', subjectFromPullRequest(ctx.eventName, ctx.event));
    }
    const { client, namespace } = await connectFromInputs();
    const handle = client.workflow.getHandle(id);
    const d = await handle.describe().catch((e: unknown) => {
      throw new Error(
        `no SecMLOps pipeline ${id} in namespace ${namespace} (${messageOf(e)}); did the start action run?`,
      );
    });
    // Anyone who reaches the namespace can start a workflow under this ID; only our workers' pipelines give verdicts.
    if (d.type !== 'secmlopsPipeline' || d.taskQueue !== TASK_QUEUE)
      throw new Error(
        `${id} is a ${d.type} on task queue ${d.taskQueue}, not a SecMLOps pipeline: no verdict to wait for`,
      );
    core.info(`waiting up to ${core.getInput('timeout') || '6h'} for ${id}`);
    core.setOutput('workflow-id', id);
    await settle(await awaitOutcome(handle, timeout), runUrl(namespace, id));
  } catch (e) {
    core.setFailed(messageOf(e));
  }
}
