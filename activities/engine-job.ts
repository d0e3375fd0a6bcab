// One shape for every activity that runs an engine job: a private work folder removed afterwards, a heartbeat
// every few seconds repeating the latest progress (a slow configuration may stretch the gaps between progress
// messages past the heartbeat timeout), the activity's cancellation handed to the job (cancelling kills it), and
// the job's failure mapped the same way everywhere (job-failure.ts). A failure the activity raised itself, already
// an ApplicationFailure, passes through as it is.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobFailure } from './job-failure.js';

export interface EngineJob<D = unknown> {
  workDir: string;
  signal: AbortSignal;
  /** Records the latest progress (when given) and heartbeats it now. */
  beat: (details?: D) => void;
}

export interface EngineJobOptions<D = unknown> {
  /** The failure type for an input the engine refused (a bad model, dataset or checkpoint). */
  code: string;
  /** The work folder's name prefix (secmlops-PREFIX-…). */
  prefix: string;
  everyMs?: number;
  /** How details are heartbeated (default: as they are; train seals them). */
  heartbeat?: (details: D) => void;
  /** Rewrites a failure's message, e.g. to name the user's file rather than its copy in the store. */
  message?: (m: string) => string;
  /** Runs before a failure is reported (e.g. to let pending checkpoint writes settle). */
  onError?: () => Promise<void>;
}

export async function engineJob<T, D = unknown>(
  opts: EngineJobOptions<D>,
  run: (job: EngineJob<D>) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  const send = (d: D | undefined) => (opts.heartbeat && d !== undefined ? opts.heartbeat(d) : ctx.heartbeat(d));
  let latest: D | undefined;
  const beat = (details?: D) => {
    if (details !== undefined) latest = details;
    send(latest);
  };
  const workDir = await mkdtemp(join(tmpdir(), `secmlops-${opts.prefix}-`));
  const ticker = setInterval(() => send(latest), opts.everyMs ?? 10_000);
  try {
    return await run({ workDir, signal: ctx.cancellationSignal, beat });
  } catch (e) {
    await opts.onError?.().catch(() => undefined);
    throw e instanceof ApplicationFailure ? e : jobFailure(e, opts.code, opts.message);
  } finally {
    clearInterval(ticker);
    await rm(workDir, { recursive: true, force: true });
  }
}
