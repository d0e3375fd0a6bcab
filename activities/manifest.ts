// The data stage's SHA-256 manifest: streams each file, heartbeats every second inside a file and after each one,
// and on retry resumes at the file its heartbeat was in instead of starting over. Inside a file, because a file
// that takes longer than the heartbeat timeout to read would otherwise time out on every attempt.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { join } from 'node:path';
import { RegularFileError, hashRegular, type HashProgress } from '../engine/io/regular-file.js';
import type { Evidence } from '../policy/index.js';
import type { ManifestEntry } from '../workflows/messages.js';
import type { EvidenceContext, EvidenceSigner } from './evidence.js';

export interface ManifestInput {
  root: string;
  files: string[];
  /** Sign the manifest as evidence for this pipeline and stage (runs since the trust boundary). */
  evidence?: EvidenceContext;
}

export interface ManifestResult {
  manifest: ManifestEntry[];
  /** How many files the heartbeat of an earlier attempt had already hashed. */
  resumedFrom: number;
  attempt: number;
  evidence?: Evidence<'manifest'>;
}

interface Progress {
  done: ManifestEntry[];
  /** Bytes in the files done. */
  bytes: number;
  totalFiles: number;
  /** The file being hashed and how far: a retry restarts it from byte 0 (the hash state is not kept). */
  current?: { path: string; bytes: number };
}

// Well inside the 10 s heartbeat timeout, and the SDK throttles what it sends on.
const PROGRESS_MS = 1000;

export async function hashDatasetFiles(
  signer: () => Promise<EvidenceSigner>,
  input: ManifestInput,
): Promise<ManifestResult> {
  const ctx = Context.current();
  // Evidence-producing runs resume only from progress this worker pool sealed: heartbeat details come back from the
  // server, and a rogue task poller could have written digests no worker computed.
  const seal = input.evidence ? await signer() : undefined;
  const raw = ctx.info.heartbeatDetails as unknown;
  const previous = seal ? seal.open<Progress>(raw) : (raw as Progress | undefined);
  const done: ManifestEntry[] = Array.isArray(previous?.done)
    ? previous.done.filter((e, i) => e.path === input.files[i])
    : [];
  const resumedFrom = done.length;
  if (resumedFrom > 0)
    ctx.log.info('resuming the dataset manifest from the last heartbeat', { resumedFrom, total: input.files.length });
  let bytes = done.reduce((a, e) => a + e.bytes, 0);
  const beat = (current?: Progress['current']) => {
    const progress: Progress = { done, bytes, totalFiles: input.files.length, ...(current ? { current } : {}) };
    ctx.heartbeat(seal ? seal.seal(progress) : progress);
  };
  for (let i = done.length; i < input.files.length; i++) {
    const path = join(input.root, input.files[i]);
    const entry = await hashFile(path, ctx.cancellationSignal, (p) =>
      beat({ path: input.files[i], bytes: p.bytes }),
    ).catch((e: unknown) => {
      if (!(e instanceof RegularFileError)) throw e;
      throw ApplicationFailure.nonRetryable(`dataset file ${e.message}`, 'DatasetFileUnreadable');
    });
    done.push({ path: input.files[i], ...entry });
    bytes += entry.bytes;
    beat();
  }
  const result: ManifestResult = { manifest: done, resumedFrom, attempt: ctx.info.attempt };
  if (seal && input.evidence)
    result.evidence = seal.sign('manifest', input.evidence, {
      files: done.map((f) => ({ path: f.path, sha256: f.sha256, bytes: f.bytes })),
    });
  return result;
}

/** SHA-256 of a file someone else named: only a regular file, streamed, with progress every second while it reads. */
export async function hashFile(
  path: string,
  signal?: AbortSignal,
  onProgress?: (p: HashProgress) => void,
): Promise<{ sha256: string; bytes: number }> {
  return hashRegular(path, { signal, onProgress, progressMs: PROGRESS_MS });
}
