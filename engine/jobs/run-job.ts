// Supervises an engine job in a child process: relays progress, kills it on abort, and reports a crash clearly.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type {
  EvaluateRequest,
  EvaluateResult,
  ExperimentEvalRequest,
  ExperimentEvalResult,
  JobMessage,
  JobProgress,
  JobRequest,
  SanitiseRequest,
  SanitiseResult,
  TrainProgressMessage,
  TrainRequest,
  TrainResult,
} from './protocol.js';

const JOB_MAIN = fileURLToPath(new URL('./job-main.ts', import.meta.url));
/** tsx by absolute URL: the job's working directory is empty, so a bare `--import tsx` would not resolve. */
const TSX = pathToFileURL(
  join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'loader.mjs'),
).href;

/** The request with every path absolute, since the job does not run in this process's working directory. */
function absolute<R extends JobRequest>(req: R): R {
  const r = { ...req, images: resolvePath(req.images), labels: resolvePath(req.labels) };
  if (r.kind === 'evaluate') return { ...r, modelPath: resolvePath(r.modelPath) };
  if (r.kind === 'sanitise') return { ...r, workDir: resolvePath(r.workDir) };
  if (r.kind === 'experiment') return { ...r, modelPath: resolvePath(r.modelPath) };
  return {
    ...r,
    workDir: resolvePath(r.workDir),
    ...(r.resume ? { resume: { ...r.resume, path: resolvePath(r.resume.path) } } : {}),
  };
}

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

const CREDENTIALS = /^(AWS_|SECMLOPS_GITHUB_(TOKEN|APP_KEY)|SLACK_|SECMLOPS_PAYLOAD_KEY)/;

function withoutCredentials(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !CREDENTIALS.test(k)));
}

export function runJob(req: EvaluateRequest, opts?: JobOptions): Promise<EvaluateResult>;
export function runJob(req: TrainRequest, opts?: JobOptions): Promise<TrainResult>;
export function runJob(req: SanitiseRequest, opts?: JobOptions): Promise<SanitiseResult>;
export function runJob(req: ExperimentEvalRequest, opts?: JobOptions): Promise<ExperimentEvalResult>;
export function runJob(req: JobRequest, opts: JobOptions = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new Error('the engine job was cancelled before it started'));
    // An empty working directory of its own: onnxruntime resolves relative paths inside a model (external data)
    // against it, so even a model that slipped past the check would find nothing there to read.
    const cwd = mkdtempSync(join(tmpdir(), 'secmlops-job-'));
    const child = fork(JOB_MAIN, [], {
      cwd,
      execArgv: ['--import', TSX],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
      // The job parses hostile models: it gets no cloud credentials (the artifact store's are the supervisor's).
      env: withoutCredentials(process.env),
    });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      rmSync(cwd, { recursive: true, force: true });
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
      else if (m.type === 'result') finish(() => resolve(m.result));
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
      child.send(absolute(req));
    });
  });
}
