import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { join } from 'node:path';
import {
  DatasetDigestMismatch,
  DatasetError,
  checkPair,
  classCounts,
  digestIdx,
  pixelStats,
  readIdx,
} from '../engine/data/idx.js';
import { dataMetrics, own, type DatasetSplit, type Evidence, type FileDigest } from '../policy/index.js';
import type { SplitReport } from '../workflows/messages.js';
import type { EvidenceContext, EvidenceSigner } from './evidence.js';

export interface ValidateInput {
  root: string;
  splits: Record<string, DatasetSplit>;
  classes: number;
  /** artifacts.dataset.maxFileBytes: the largest decoded size of one IDX file. */
  maxFileBytes?: number;
  /** The policy's pinned digests: each file is hashed as it is read and refused if it changed since the manifest. */
  pinned?: FileDigest[];
  evidence?: EvidenceContext;
}

export interface ValidateResult {
  splits: SplitReport[];
  metrics: Record<string, number>;
  /** Every file read, with the digest computed while reading it. */
  dataset: FileDigest[];
  evidence?: Evidence<'validation'>;
}

/**
 * Reports of splits this worker decoded and checked, keyed by both files' SHA-256 (as read), the class count and the
 * size limit. A report is a function of those bytes alone, so a later pipeline over the same files reuses it.
 */
const checked = new Map<string, Omit<SplitReport, 'split'>>();
const CHECKED_LIMIT = 32;

function remember(key: string, report: Omit<SplitReport, 'split'>): void {
  checked.delete(key);
  if (checked.size >= CHECKED_LIMIT) checked.delete(checked.keys().next().value as string);
  checked.set(key, report);
}

/** IDX structure, agreeing counts, label range, pixel statistics and class balance for every split. */
export async function validateDataset(
  signer: () => Promise<EvidenceSigner>,
  input: ValidateInput,
): Promise<ValidateResult> {
  const ctx = Context.current();
  const reports: SplitReport[] = [];
  const read: FileDigest[] = [];
  const pinned = (file: string) => {
    if (!input.pinned) return undefined;
    const f = input.pinned.find((p) => p.path === file);
    if (!f)
      throw ApplicationFailure.nonRetryable(
        `dataset file ${file} is not pinned in the policy's artifacts.dataset.files`,
        'DatasetNotPinned',
      );
    return f.sha256;
  };
  for (const split of Object.keys(input.splits)) {
    const files = own(input.splits, split)!;
    try {
      // readIdx refuses anything but a regular file, caps what a gzip may inflate to, and reports progress so a
      // large file heartbeats while it is read.
      const limits = input.maxFileBytes ? { maxBytes: input.maxFileBytes } : {};
      // Bytes this worker has already checked (same digests, same class count and size limit) are not decoded again:
      // hashing a file costs a fraction of inflating and scanning it. Anything else is read in full.
      ctx.heartbeat({ split, step: 'hashing' });
      const digest = async (file: string) => {
        const [actual, expected] = [await digestIdx(join(input.root, file), limits), pinned(file)];
        if (expected !== undefined && actual !== expected)
          throw new DatasetDigestMismatch(join(input.root, file), actual, expected);
        return actual;
      };
      const sums = { images: await digest(files.images), labels: await digest(files.labels) };
      const keyOf = (images: string, labels: string) =>
        [images, labels, input.classes, limits.maxBytes ?? ''].join(' ');
      const known = checked.get(keyOf(sums.images, sums.labels));
      if (known) {
        read.push({ path: files.images, sha256: sums.images }, { path: files.labels, sha256: sums.labels });
        reports.push({ split, ...known });
        continue;
      }
      const load = (step: string, file: string) => {
        ctx.heartbeat({ split, step });
        return readIdx(join(input.root, file), pinned(file), {
          ...limits,
          onProgress: (p) => ctx.heartbeat({ split, step, bytes: p.bytes, size: p.size }),
        });
      };
      const images = await load('reading images', files.images);
      const labels = await load('reading labels', files.labels);
      read.push({ path: files.images, sha256: images.sha256 }, { path: files.labels, sha256: labels.sha256 });
      ctx.heartbeat({ split, step: 'checking' });
      const pair = checkPair(images, labels, files, input.classes);
      const px = pixelStats(pair.images);
      const report: Omit<SplitReport, 'split'> = {
        images: pair.count,
        rows: pair.rows,
        cols: pair.cols,
        classCounts: classCounts(pair.labels, input.classes),
        pixelMean: px.mean,
        pixelStd: px.std,
        pixelMin: px.min,
        pixelMax: px.max,
      };
      reports.push({ split, ...report });
      remember(keyOf(images.sha256, labels.sha256), report);
    } catch (e) {
      if (e instanceof DatasetDigestMismatch)
        throw ApplicationFailure.nonRetryable(`split ${split}: ${e.message}`, 'DatasetDigestMismatch');
      // Bad data does not get better on retry.
      if (e instanceof DatasetError)
        throw ApplicationFailure.nonRetryable(`split ${split}: ${e.message}`, 'InvalidDataset');
      throw e;
    }
  }
  const metrics = dataMetrics(reports);
  const result: ValidateResult = { splits: reports, metrics, dataset: read };
  if (input.evidence)
    result.evidence = (await signer()).sign('validation', input.evidence, { dataset: read, splits: reports, metrics });
  return result;
}
