// SecMLOps start: validates the policy, starts the PR's pipeline (or attaches to it for the same commit, or cancels a
// superseded commit's run first), and sets a pending `secmlops` commit status that links to the run.
import * as core from '@actions/core';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { loadPolicy } from '../../../cli/load-policy.js';
import { pipelineId } from '../../../cli/subject.js';
import { GitHubApi, parseRepo } from '../../../github/api.js';
import { TASK_QUEUE, type Subject } from '../../../workflows/messages.js';
import { connectFromInputs, inWorkspace, messageOf, readContext, runUrl } from '../../shared/connect.js';
import { PR_ACTIONS, subjectFromPullRequest } from '../../shared/events.js';
import { awaitOutcome, settle, timeoutInput } from '../../shared/verdict.js';

export async function run(): Promise<void> {
  try {
    const ctx = await readContext();
    const githubToken = core.getInput('github-token', { required: true });
    core.setSecret(githubToken);
    const wait = (core.getInput('wait') || 'false').toLowerCase() === 'true';
    const waitTimeout = timeoutInput('wait-timeout', '6h');
    const action = typeof ctx.event.action === 'string' ? ctx.event.action : '';
    if (!PR_ACTIONS.includes(action)) {
      core.info(`pull_request ${action}: nothing to start (SecMLOps starts on ${PR_ACTIONS.join(', ')})`);
      return;
    }
    const policyPath = inWorkspace(ctx, core.getInput('policy') || 'secmlops.yaml');
    const policy = await loadPolicy(policyPath);
    const { client, namespace } = await connectFromInputs();
    let subject: Subject & { pr: number } = subjectFromPullRequest(ctx.eventName, ctx.event);
    const id = pipelineId(policy.name, subject);
    subject = { ...subject, url: runUrl(namespace, id) };
    const { handle, runId, attached } = await startOrAttach(client, id, subject, policy);
    core.setOutput('workflow-id', id);
    core.setOutput('run-id', runId);
    core.setOutput('console-url', subject.url);
    core.info(`${attached ? 'attached to' : 'started'} ${id} (run ${runId}) for ${subject.headSha.slice(0, 12)}: ${subject.url}`);
    if (!attached) {
      const api = new GitHubApi(githubToken);
      await api.setStatus(parseRepo(subject.repo), subject.headSha, { state: 'pending', description: `SecMLOps pipeline running: ${policy.stages.map((s) => s.name).join(' → ')}`, targetUrl: subject.url });
    }
    if (wait) await settle(await awaitOutcome(handle, waitTimeout), subject.url);
  } catch (e) {
    core.setFailed(messageOf(e));
  }
}

/**
 * One pipeline per PR. For the same commit a re-run attaches to it (running or finished); for a new commit the
 * superseded run is cancelled and a new one starts under the same workflow ID.
 */
async function startOrAttach(client: Client, id: string, subject: Subject, policy: unknown): Promise<{ handle: WorkflowHandle; runId: string; attached: boolean }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await client.workflow
      .getHandle(id)
      .describe()
      .catch(() => undefined);
    if (existing) {
      const sha = existing.memo?.headSha;
      if (sha === subject.headSha) return { handle: client.workflow.getHandle(id, existing.runId), runId: existing.runId, attached: true };
      if (existing.status.name === 'RUNNING') {
        core.info(`cancelling ${id} run ${existing.runId}: commit ${String(sha).slice(0, 12)} is superseded by ${subject.headSha.slice(0, 12)}`);
        const old = client.workflow.getHandle(id, existing.runId);
        await old.cancel();
        await old.result().catch(() => undefined);
      }
    }
    try {
      const handle = await client.workflow.start('secmlopsPipeline', { taskQueue: TASK_QUEUE, workflowId: id, args: [subject, policy], memo: { headSha: subject.headSha } });
      return { handle, runId: handle.firstExecutionRunId, attached: false };
    } catch (e) {
      // Another job started it between our look and our start: look again.
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    }
  }
  throw new Error(`could not start or attach to ${id}: it kept changing underneath (concurrent starts?)`);
}
