// Finding poisoned training images from what a model trained on them learned: the penultimate layer's activations,
// per class. Poisoned images of a class (relabelled images of other classes, or a trigger the model keys on) form a
// separate population inside that class, which two methods look for:
// - spectral signatures (Tran, Li, Mądry 2018): the top singular direction of the class's centred activations;
//   poison lies far along it, and the highest-scoring 1.5 × the expected poison rate of every class is flagged (so
//   clean classes lose that share too, and a rate far below the poisoned class's own share misses most of it);
// - activation clustering (Chen et al. 2018): the activations reduced to 10 principal components, split by 2-means;
//   the smaller cluster is flagged when it is small enough and well separated (silhouette).
import { InputError } from '../input-error.js';
import type { ImageSet } from '../data/fashion.js';
import type { ModelProto } from '../onnx/proto.js';
import { Rng } from '../runtime/rng.js';
import { createSession, floatTensor } from '../runtime/session.js';
import { centredRows, project, silhouette, topDirections, twoMeans, type Matrix } from './linalg.js';

export type DetectMethod = 'spectral' | 'activation-clustering';
export const DETECT_METHODS: readonly DetectMethod[] = ['spectral', 'activation-clustering'];

/** The model with its penultimate activations (the input of the final Gemm or MatMul) as a second output. */
export function withFeatures(model: ModelProto): { model: ModelProto; feature: string } {
  const g = model.graph!;
  const producer = (name: string) => (g.node ?? []).find((n) => (n.output ?? []).includes(name));
  let node = producer(g.output?.[0]?.name ?? '');
  if (node?.opType === 'Softmax' || node?.opType === 'LogSoftmax') node = producer(node.input?.[0] ?? '');
  if (node?.opType === 'Add') {
    const mm = (node.input ?? []).map(producer).find((n) => n?.opType === 'MatMul');
    if (mm) node = mm;
  }
  if (!node || (node.opType !== 'Gemm' && node.opType !== 'MatMul'))
    throw new InputError(
      `cannot find the penultimate layer: the first output comes from ${node?.opType ?? 'no node'}, not a final Gemm or MatMul`,
    );
  const feature = node.input![0];
  return {
    feature,
    model: {
      ...model,
      graph: { ...g, output: [...(g.output ?? []), { name: feature, type: { tensorType: { elemType: 1 } } }] },
    },
  };
}

/** Penultimate activations of every image, flattened per image: count × features. */
export async function activations(
  model: ModelProto,
  data: ImageSet,
  opts: { batch?: number; threads?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<Matrix> {
  const { model: m, feature } = withFeatures(model);
  const session = await createSession(m, { threads: opts.threads });
  const pixels = data.shape.reduce((a, b) => a * b, 1);
  const batch = opts.batch ?? 500;
  let out: Float32Array | undefined;
  let cols = 0;
  try {
    for (let s = 0; s < data.count; s += batch) {
      const n = Math.min(batch, data.count - s);
      const r = await session.run({
        [session.inputNames[0]]: floatTensor(data.images.subarray(s * pixels, (s + n) * pixels), [n, ...data.shape]),
      });
      const f = r[feature].data as Float32Array;
      cols = f.length / n;
      out ??= new Float32Array(data.count * cols);
      out.set(f, s * cols);
      opts.onProgress?.(s + n, data.count);
    }
  } finally {
    await session.release();
  }
  return { data: out ?? new Float32Array(), rows: data.count, cols };
}

const byClass = (labels: ArrayLike<number>, classes: number) => {
  const groups: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) groups[labels[i]]?.push(i);
  return groups;
};

export interface ClassReport {
  class: number;
  images: number;
  flagged: number;
  /** Spectral: the class's highest score over its median. Clustering: the smaller cluster's share and silhouette. */
  score: number;
  relativeSize?: number;
  silhouette?: number;
}

export interface Detection {
  method: DetectMethod;
  /** Flagged images, ascending. */
  flagged: number[];
  classes: ClassReport[];
}

/**
 * Tran et al.'s rule: in every class, the rows with the highest squared projection on the class's top singular
 * direction, 1.5 × the expected poison rate of the class's rows. `scores` keeps each row's squared projection.
 */
export function spectralSignatures(
  acts: Matrix,
  labels: ArrayLike<number>,
  classes: number,
  expectedRate: number,
  seed = 1,
): Detection & { scores: Float64Array } {
  const rng = new Rng(seed);
  const scores = new Float64Array(acts.rows);
  const reports: ClassReport[] = [];
  const flagged: number[] = [];
  byClass(labels, classes).forEach((rows, c) => {
    if (rows.length < 2) return;
    const a = centredRows(acts, rows);
    const [v] = topDirections(a, 1, rng);
    const p = project(a, [v]).data;
    rows.forEach((i, r) => (scores[i] = p[r] * p[r]));
    const k = Math.min(rows.length, Math.round(1.5 * expectedRate * rows.length));
    const top = [...rows].sort((x, y) => scores[y] - scores[x]).slice(0, k);
    flagged.push(...top);
    reports.push({ class: c, images: rows.length, flagged: top.length, score: scores[top[0]] ?? 0 });
  });
  return { method: 'spectral', flagged: flagged.sort((x, y) => x - y), classes: reports, scores };
}

export interface ClusteringOptions {
  components?: number;
  /** The smaller cluster is poison only if it holds at most this share of its class (Chen et al.: 0.35). */
  maxRelativeSize?: number;
  /** ... and the split is at least this clear ... */
  minSilhouette?: number;
  /**
   * ... and clearer than the median class's split by this much. Every class splits somewhat (a clean class has
   * sub-styles: measured silhouettes 0.23–0.35 on clean Fashion-MNIST classes); poison stands out from them.
   */
  silhouetteMargin?: number;
  seed?: number;
}

export function activationClustering(
  acts: Matrix,
  labels: ArrayLike<number>,
  classes: number,
  o: ClusteringOptions = {},
): Detection {
  const rng = new Rng(o.seed ?? 1);
  const splits: { report: ClassReport; smaller: number[] }[] = [];
  byClass(labels, classes).forEach((rows, c) => {
    if (rows.length < 4) return;
    const a = centredRows(acts, rows);
    const reduced = project(a, topDirections(a, Math.min(o.components ?? 10, a.cols), rng, 4));
    const assign = twoMeans(reduced, rng);
    const ones = assign.reduce((s, x) => s + x, 0);
    const small = ones <= rows.length - ones ? 1 : 0;
    const relativeSize = Math.min(ones, rows.length - ones) / rows.length;
    const sil = silhouette(reduced, assign, rng);
    splits.push({
      report: { class: c, images: rows.length, flagged: 0, score: sil, relativeSize, silhouette: sil },
      smaller: rows.filter((_, r) => assign[r] === small),
    });
  });
  const sils = splits.map((x) => x.report.score).sort((a, b) => a - b);
  const median = sils[Math.floor(sils.length / 2)] ?? 0;
  const bar = Math.max(o.minSilhouette ?? 0.15, median + (o.silhouetteMargin ?? 0.05));
  const flagged: number[] = [];
  for (const { report, smaller } of splits) {
    const size = report.relativeSize ?? 1;
    if (size > 0 && size <= (o.maxRelativeSize ?? 0.35) && report.score >= bar) {
      flagged.push(...smaller);
      report.flagged = smaller.length;
    }
  }
  return {
    method: 'activation-clustering',
    flagged: flagged.sort((x, y) => x - y),
    classes: splits.map((x) => x.report),
  };
}

/** Recall, false-positive rate over the clean images examined, and precision of a detection against the truth. */
export function scoreDetection(flagged: number[], truth: number[], count: number) {
  const poisoned = new Set(truth.filter((i) => i < count));
  const hits = flagged.filter((i) => poisoned.has(i)).length;
  const clean = count - poisoned.size;
  return {
    recall: poisoned.size ? hits / poisoned.size : 1,
    false_positive_rate: clean ? (flagged.length - hits) / clean : 0,
    precision: flagged.length ? hits / flagged.length : 1,
  };
}
