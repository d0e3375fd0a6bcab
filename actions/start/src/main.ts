// SecMLOps start: starts the PR's pipeline, proven by the job's GitHub Actions OIDC token (audience: this pipeline),
// with a reference to the policy that the workers read from the PR's base commit themselves. A re-run attaches to
// the run whose *authenticated* subject is this commit; anything else under the PR's workflow ID (a superseded
// commit, or a run someone else started) is cancelled and replaced. The worker, not this job, sets the pending status.
import * as core from '@actions/core';
import type { Client } from '@temporalio/client';
import { pipelineStatus } from '../../../client/pipelines.js';
import { startWithInput, type PipelineHandle } from '../../../client/start.js';
import { pipelineId } from '../../../cli/subject.js';
import { startAudience, type ClaimedSubject, type PipelineInput } from '../../../policy/index.js';
import { TASK_QUEUE, statusQuery, type PipelineStatus } from '../../../workflows/messages.js';
import type { secmlopsPipeline } from '../../../workflows/pipeline.js';
import { connectFromInputs, messageOf, readContext, runUrl } from '../../shared/connect.js';
import { PR_ACTIONS, subjectFromPullRequest } from '../../shared/events.js';
import { awaitOutcome, settle, timeoutInput } from '../../shared/verdict.js';

export async function run(): Promise<void> {
  try {
    const ctx = await readContext();
    const wait = (core.getInput('wait') || 'false').toLowerCase() === 'true';
    const waitTimeout = timeoutInput('wait-timeout', '6h');
    const action = typeof ctx.event.action === 'string' ? ctx.event.action : '';
    if (!PR_ACTIONS.includes(action)) {
      core.info(`pull_request ${action}: nothing to start (SecMLOps starts on ${PR_ACTIONS.join(', ')})`);
      return;
    }
    const policyRef = core.getInput('policy') || 'secmlops.yaml';
    const { source: _source, ...claimed } = subjectFromPullRequest(ctx.eventName, ctx.event);
    const id = pipelineId('', claimed);
    const { client, namespace } = await connectFromInputs();
    const url = runUrl(namespace, id);
    // A fresh token for every start: the workers accept each token ID once.
    const input = async (): Promise<PipelineInput> => {
      const token = await core.getIDToken(startAudience(id)).catch((e: Error) => {
        throw new Error(
          `cannot get the job's OIDC token (does the job have "permissions: id-token: write"? fork PRs get none): ${e.message}`,
        );
      });
      core.setSecret(token);
      return { start: { kind: 'github-oidc', token, workflowId: id, subject: claimed, policyRef }, url };
    };
    const { handle, runId, attached } = await startOrAttach(client, id, claimed, input);
    core.setOutput('workflow-id', id);
    core.setOutput('run-id', runId);
    core.setOutput('console-url', url);
    core.info(
      `${attached ? 'attached to' : 'started'} ${id} (run ${runId}) for ${claimed.headSha.slice(0, 12)}: ${url}`,
    );
    if (!attached) {
      // The workers check the start; a refusal (a bad policy, an unconfirmed PR) fails this step with their reason.
      const resolved = await resolution(handle);
      // Refused: it ended without a subject a worker confirmed. (A pipeline that resolved may end fast too.)
      if (resolved.state === 'failed' && !resolved.subjectDigest)
        throw new Error(`SecMLOps refused the start: ${resolved.reason ?? 'no reason recorded'}`);
      // The worker sets the pending `secmlops` status itself once it has confirmed the PR.
    }
    if (wait) await settle(await awaitOutcome(handle, waitTimeout), url);
  } catch (e) {
    core.setFailed(messageOf(e));
  }
}

/**
 * One pipeline per PR. A run whose authenticated subject is this commit is attached to (running or finished); any
 * other run under the ID is cancelled if it still runs, and a new one starts.
 */
async function startOrAttach(
  client: Client,
  id: string,
  claimed: ClaimedSubject,
  input: () => Promise<PipelineInput>,
): Promise<{ handle: PipelineHandle; runId: string; attached: boolean }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await client.workflow
      .getHandle(id)
      .describe()
      .catch(() => undefined);
    if (existing) {
      const handle: PipelineHandle = client.workflow.getHandle<typeof secmlopsPipeline>(id, existing.runId);
      const running = existing.status.name === 'RUNNING';
      // Only a run our workers execute can answer truthfully: anyone can start another type, or poll another queue.
      const ours = existing.type === 'secmlopsPipeline' && existing.taskQueue === TASK_QUEUE;
      const status = !ours
        ? undefined
        : running
          ? await resolution(handle).catch(() => undefined)
          : await pipelineStatus(client, id).catch(() => undefined);
      if (status && sameChange(status, claimed)) return { handle, runId: existing.runId, attached: true };
      if (running && !ours) {
        core.info(
          `terminating ${id} run ${existing.runId}: a ${existing.type} on task queue ${existing.taskQueue} is not a SecMLOps pipeline`,
        );
        await handle.terminate('not a SecMLOps pipeline run by its workers');
      } else if (running) {
        core.info(
          `cancelling ${id} run ${existing.runId}: it is not an authenticated run for ${claimed.headSha.slice(0, 12)} (superseded, or started by someone else)`,
        );
        await handle.cancel();
        // A run that does not end within a minute of being cancelled is terminated.
        const ended = await Promise.race([
          handle.result().then(
            () => true,
            () => true,
          ),
          new Promise<boolean>((r) => setTimeout(() => r(false), 60_000).unref()),
        ]);
        if (!ended) await handle.terminate('did not end after cancellation').catch(() => undefined);
      }
    }
    const started = await startWithInput(client, id, await input(), false).catch((e: Error) =>
      e.name === 'WorkflowExecutionAlreadyStartedError' ? undefined : Promise.reject(e),
    );
    // Another job started it between our look and our start: look again.
    if (started) return { handle: started.handle, runId: started.runId ?? '', attached: false };
  }
  throw new Error(`could not start or attach to ${id}: it kept changing underneath (concurrent starts?)`);
}

/** A run's subject counts only once a worker confirmed it through GitHub. */
function sameChange(s: PipelineStatus, c: ClaimedSubject): boolean {
  return (
    s.subject.source === 'github' &&
    s.subject.repo.toLowerCase() === c.repo.toLowerCase() &&
    s.subject.pr === c.pr &&
    s.subject.headSha === c.headSha
  );
}

/** The run's status once its start is resolved (or refused), polled for up to a minute. */
async function resolution(handle: PipelineHandle): Promise<PipelineStatus> {
  const until = Date.now() + 60_000;
  for (;;) {
    // A query can fail until the run's first workflow task has completed: ask again until the deadline.
    const s = await handle.query(statusQuery).then(
      (x) => x as PipelineStatus,
      (e: Error) => {
        if (Date.now() > until) throw e;
        return undefined;
      },
    );
    if (s && (s.subjectDigest || s.state !== 'running' || Date.now() > until)) return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}
