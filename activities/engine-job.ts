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
  // Metrics go to the worker's Prometheus endpoint when it has one (SECMLOPS_METRICS_ADDRESS); else nowhere.
  const tags = { job: opts.prefix };
  const speed = ctx.metricMeter.createGauge('secmlops_engine_images_per_second', 'float', '', 'engine throughput');
  const started = performance.now();
  let latest: D | undefined;
  const beat = (details?: D) => {
    if (details !== undefined) latest = details;
    const rate = imagesPerSecond(details, performance.now() - started);
    if (rate !== undefined) speed.set(rate, tags);
    send(latest);
  };
  const jobs = ctx.metricMeter.createCounter('secmlops_engine_jobs', '', 'engine jobs run, by job and outcome');
  const workDir = await mkdtemp(join(tmpdir(), `secmlops-${opts.prefix}-`));
  const ticker = setInterval(() => send(latest), opts.everyMs ?? 10_000);
  try {
    const out = await run({ workDir, signal: ctx.cancellationSignal, beat });
    jobs.add(1, { ...tags, outcome: 'completed' });
    return out;
  } catch (e) {
    jobs.add(1, { ...tags, outcome: ctx.cancellationSignal.aborted ? 'cancelled' : 'failed' });
    await opts.onError?.().catch(() => undefined);
    throw e instanceof ApplicationFailure ? e : jobFailure(e, opts.code, opts.message);
  } finally {
    clearInterval(ticker);
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Training reports its own images/s; other jobs report images done, averaged over the job's time so far. */
function imagesPerSecond(details: unknown, elapsedMs: number): number | undefined {
  const d = details as { imagesPerSecond?: unknown; done?: unknown; progress?: { imagesPerSecond?: unknown } };
  const own = d?.imagesPerSecond ?? d?.progress?.imagesPerSecond;
  if (typeof own === 'number' && Number.isFinite(own)) return own;
  if (typeof d?.done === 'number' && elapsedMs > 0) return d.done / (elapsedMs / 1000);
  return undefined;
}
