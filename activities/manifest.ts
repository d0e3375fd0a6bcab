// The data stage's SHA-256 manifest: streams each file, heartbeats after each one, and on retry resumes after the
// last file its heartbeat recorded instead of starting over.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
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
  bytes: number;
  totalFiles: number;
}

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
  for (let i = done.length; i < input.files.length; i++) {
    const path = join(input.root, input.files[i]);
    try {
      await stat(path);
    } catch (e) {
      throw ApplicationFailure.nonRetryable(
        `dataset file ${input.files[i]} is missing under ${input.root} (${(e as NodeJS.ErrnoException).code})`,
        'DatasetFileMissing',
      );
    }
    const entry = await hashFile(path, ctx.cancellationSignal);
    done.push({ path: input.files[i], ...entry });
    bytes += entry.bytes;
    const progress: Progress = { done, bytes, totalFiles: input.files.length };
    ctx.heartbeat(seal ? seal.seal(progress) : progress);
  }
  const result: ManifestResult = { manifest: done, resumedFrom, attempt: ctx.info.attempt };
  if (seal && input.evidence)
    result.evidence = seal.sign('manifest', input.evidence, {
      files: done.map((f) => ({ path: f.path, sha256: f.sha256, bytes: f.bytes })),
    });
  return result;
}

export async function hashFile(path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}
