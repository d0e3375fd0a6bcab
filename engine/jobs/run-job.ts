// Supervises an engine job in a child process: relays progress, kills it on abort, and reports a crash clearly.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type {
  EvaluateRequest,
  EvaluateResult,
  JobMessage,
  JobProgress,
  TrainProgressMessage,
  TrainRequest,
  TrainResult,
} from './protocol.js';

const JOB_MAIN = fileURLToPath(new URL('./job-main.ts', import.meta.url));

/** A job that failed; `permanent` when its input is at fault and a retry cannot help. */
export class JobError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    /** The input error's kind when the job named one (e.g. DatasetDigestMismatch). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'JobError';
  }
}

export interface JobOptions {
  onProgress?: (p: JobProgress) => void;
  onTrainProgress?: (p: TrainProgressMessage) => void;
  /** A checkpoint file the job wrote; the job goes on while the callback runs. */
  onCheckpoint?: (m: { path: string; epoch: number; step: number }) => void;
  signal?: AbortSignal;
  /** Called with the child's pid once it runs (tests use it to check nothing is left behind). */
  onStart?: (pid: number) => void;
}

export function runJob(req: EvaluateRequest, opts?: JobOptions): Promise<EvaluateResult>;
export function runJob(req: TrainRequest, opts?: JobOptions): Promise<TrainResult>;
export function runJob(
  req: EvaluateRequest | TrainRequest,
  opts: JobOptions = {},
): Promise<EvaluateResult | TrainResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new Error('the engine job was cancelled before it started'));
    const child = fork(JOB_MAIN, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', abort);
      f();
    };
    const abort = () => {
      child.kill('SIGKILL');
      finish(() => reject(new Error('the engine job was cancelled')));
    };
    opts.signal?.addEventListener('abort', abort, { once: true });
    child.on('message', (m: JobMessage) => {
      if (m.type === 'progress') opts.onProgress?.(m.progress);
      else if (m.type === 'train-progress') opts.onTrainProgress?.(m.progress);
      else if (m.type === 'checkpoint') opts.onCheckpoint?.(m);
      else if (m.type === 'result') finish(() => resolve(m.result as EvaluateResult | TrainResult));
      else finish(() => reject(new JobError(m.message, m.permanent, m.code)));
    });
    child.on('exit', (code, signal) =>
      finish(() =>
        reject(
          new JobError(
            `the engine job process died (${signal ?? `exit code ${code}`})${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
            false,
          ),
        ),
      ),
    );
    child.on('spawn', () => {
      if (child.pid) opts.onStart?.(child.pid);
      child.send(req);
    });
  });
}
