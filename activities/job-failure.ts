// How an engine job's failure reaches Temporal, the same for every job: a requested cancel is reported as cancelled,
// an input the engine refused (a bad model, dataset or checkpoint) fails for good, anything else is retried.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { JobError } from '../engine/jobs/run-job.js';

/** The error to throw for a job that failed with `e`; `message` may rewrite its text (e.g. to name the user's file). */
export function jobFailure(e: unknown, fallbackCode: string, message = (m: string) => m): unknown {
  const ctx = Context.current();
  // The SDK's own reason tells a requested cancel (reported as cancelled) from a worker shutdown (retried).
  if (ctx.cancellationSignal.aborted) {
    ctx.log.info('engine job killed', { reason: String(ctx.cancellationSignal.reason) });
    return ctx.cancellationSignal.reason;
  }
  const msg = message((e as Error).message);
  if (e instanceof JobError && e.permanent) return ApplicationFailure.nonRetryable(msg, e.code ?? fallbackCode);
  return ApplicationFailure.retryable(msg, 'EngineJobFailed');
}
