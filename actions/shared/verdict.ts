// Waiting for a pipeline's verdict and reporting it in the job: outputs, the job summary (the same tables as the PR
// comment), and a failed step that names the failed gates.
import { withRunningStage } from '../../client/pipelines.js';
import * as core from '@actions/core';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { failedGates, renderReport, type Verdict } from '../../github/report.js';
import { parseDuration } from '../../policy/index.js';
import type { PipelineStatus } from '../../workflows/messages.js';

export interface Outcome {
  status: PipelineStatus;
  verdict: Verdict;
}

/** The longest wait a timer can hold, in whole days. */
const MAX_WAIT_MS = 24 * 86_400_000;

export function timeoutInput(name: string, fallback: string): number {
  const text = core.getInput(name) || fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`input ${name} should be a duration such as "30m" or "6h", got "${text}"`);
  // setTimeout fires at once for anything past 2^31 - 1 ms (24.8 days): a huge timeout would report at once.
  if (ms > MAX_WAIT_MS) throw new Error(`input ${name} is ${text}, over the longest wait of 24d`);
  return ms;
}

/** The run's outcome, or its status so far if it has not finished within `timeoutMs`. */
export async function awaitOutcome(handle: WorkflowHandle, timeoutMs: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  try {
    const r = await Promise.race([handle.result() as Promise<PipelineStatus>, timedOut]);
    if (r !== 'timeout') return { status: r, verdict: r.state === 'passed' ? 'passed' : 'failed' };
    // The running stage's own progress (waiting for which roles) comes from its run, as every channel reads it.
    return {
      status: await withRunningStage(handle.client, await handle.query<PipelineStatus>('status')),
      verdict: 'running',
    };
  } catch (e) {
    if (!(e instanceof WorkflowFailedError)) throw e;
    // Cancelled (superseded by a newer commit) or terminated: the status query still answers from history.
    const status = await handle.query<PipelineStatus>('status');
    return { status, verdict: 'cancelled' };
  } finally {
    clearTimeout(timer);
  }
}

export async function settle(o: Outcome, url?: string): Promise<void> {
  const failed = failedGates(o.status);
  core.setOutput('verdict', o.verdict);
  core.setOutput('failed-gates', failed.join(','));
  await core.summary.addRaw(renderReport(o.status, { verdict: o.verdict, url })).write();
  if (o.verdict === 'passed') return;
  if (o.verdict === 'running') {
    const waiting = o.status.stages.find((s) => s.state === 'waiting' || s.state === 'running');
    core.setFailed(
      `SecMLOps has no verdict yet: ${waiting ? `stage ${waiting.name} is ${waiting.state}${waiting.approval?.missingRoles.length ? ` for ${waiting.approval.missingRoles.join(', ')}` : ''}` : 'still running'}`,
    );
    return;
  }
  const gates = failed.length ? `; failed gates: ${failed.join(', ')}` : '';
  core.setFailed(`SecMLOps ${o.verdict}: ${o.status.reason ?? 'no reason recorded'}${gates}`);
}
