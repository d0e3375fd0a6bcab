// The sanitise job: finds poison in a training split with a reference model and a detector, then writes the split
// again without the flagged images. Refuses (as a problem with the input) when the detector would remove more than
// the policy allows: a detector that flags a third of the data is broken or fooled, and training on what is left
// would not be the model anyone approved.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPair, toImageSet } from '../data/fashion.js';
import { writeIdxGz } from '../data/idx-write.js';
import { InputError } from '../input-error.js';
import { findPoison } from '../poison/find.js';
import type { JobProgress, SanitiseRequest, SanitiseResult } from './protocol.js';

export async function sanitiseJob(req: SanitiseRequest, progress: (p: JobProgress) => void): Promise<SanitiseResult> {
  const pair = await readPair(req, req.classes);
  const data = toImageSet(pair);
  const c = req.config;
  let accuracy: number | undefined;
  const detection = await findPoison(data, {
    method: c.method,
    classes: req.classes,
    rate: c.rate,
    seed: c.seed,
    arch: c.arch,
    epochs: c.epochs,
    threads: req.threads,
    onProgress: (p) => {
      if (p.accuracy !== undefined) accuracy = p.accuracy;
      progress({ task: p.phase, done: p.done, total: p.total });
    },
  });
  const removed = detection.flagged;
  if (removed.length > c.maxRemoval * pair.count) {
    const share = ((removed.length / pair.count) * 100).toFixed(1);
    throw Object.assign(
      new InputError(
        `the ${c.method} detector flagged ${removed.length} of ${pair.count} images (${share}%), more than ` +
          `data.poisoning.maxRemoval (${(c.maxRemoval * 100).toFixed(1)}%): refusing to train on what would be left`,
      ),
      { code: 'PoisonRemovalTooLarge' },
    );
  }
  progress({ task: 'writing the sanitised split', done: 0, total: 1 });
  const pixels = pair.rows * pair.cols;
  const kept = pair.count - removed.length;
  const images = new Uint8Array(kept * pixels);
  const labels = new Uint8Array(kept);
  let k = 0;
  let r = 0;
  for (let i = 0; i < pair.count; i++) {
    if (removed[r] === i) {
      r++;
      continue;
    }
    images.set(pair.images.subarray(i * pixels, (i + 1) * pixels), k * pixels);
    labels[k++] = pair.labels[i];
  }
  const out = {
    imagesPath: join(req.workDir, 'images.idx.gz'),
    labelsPath: join(req.workDir, 'labels.idx.gz'),
    removedPath: join(req.workDir, 'removed.json'),
  };
  await writeIdxGz(out.imagesPath, [kept, pair.rows, pair.cols], images);
  await writeIdxGz(out.labelsPath, [kept], labels);
  await writeFile(out.removedPath, `${JSON.stringify({ method: c.method, images: pair.count, removed })}\n`);
  progress({ task: 'writing the sanitised split', done: 1, total: 1 });
  return {
    ...out,
    images: pair.count,
    removed: removed.length,
    classes: detection.classes.map((x) => ({ class: x.class, images: x.images, flagged: x.flagged, score: x.score })),
    ...(accuracy === undefined ? {} : { referenceAccuracy: accuracy }),
  };
}
