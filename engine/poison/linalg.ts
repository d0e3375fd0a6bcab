// The small dense linear algebra the poisoning detectors need, on row-major Float32 matrices (n rows of d values):
// centring, the top singular directions by subspace iteration, 2-means and the silhouette. Plain loops: the
// matrices are a class's activations (thousands × a few thousand), where this takes about a second.
import type { Rng } from '../runtime/rng.js';

export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** The rows `indices` of m, each minus the mean of those rows. */
export function centredRows(m: Matrix, indices: number[]): Matrix {
  const d = m.cols;
  const out = new Float32Array(indices.length * d);
  const mean = new Float64Array(d);
  for (const i of indices) for (let j = 0; j < d; j++) mean[j] += m.data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= indices.length;
  indices.forEach((i, r) => {
    for (let j = 0; j < d; j++) out[r * d + j] = m.data[i * d + j] - mean[j];
  });
  return { data: out, rows: indices.length, cols: d };
}

/** y = A x (x of length cols). */
function mul(a: Matrix, x: Float64Array): Float64Array {
  const y = new Float64Array(a.rows);
  for (let r = 0; r < a.rows; r++) {
    let s = 0;
    const o = r * a.cols;
    for (let j = 0; j < a.cols; j++) s += a.data[o + j] * x[j];
    y[r] = s;
  }
  return y;
}

/** x = Aᵀ y (y of length rows). */
function mulT(a: Matrix, y: Float64Array): Float64Array {
  const x = new Float64Array(a.cols);
  for (let r = 0; r < a.rows; r++) {
    const v = y[r];
    if (v === 0) continue;
    const o = r * a.cols;
    for (let j = 0; j < a.cols; j++) x[j] += a.data[o + j] * v;
  }
  return x;
}

/** Gram-Schmidt in place; a vector that collapses is replaced by a random one and orthogonalised again. */
function orthonormalise(vs: Float64Array[], rng: Rng): void {
  for (let k = 0; k < vs.length; k++) {
    for (let attempt = 0; ; attempt++) {
      const v = vs[k];
      for (let p = 0; p < k; p++) {
        let dot = 0;
        for (let j = 0; j < v.length; j++) dot += v[j] * vs[p][j];
        for (let j = 0; j < v.length; j++) v[j] -= dot * vs[p][j];
      }
      let norm = 0;
      for (let j = 0; j < v.length; j++) norm += v[j] * v[j];
      norm = Math.sqrt(norm);
      if (norm > 1e-12 || attempt > 3) {
        for (let j = 0; j < v.length; j++) v[j] /= norm || 1;
        break;
      }
      for (let j = 0; j < v.length; j++) v[j] = rng.normal();
    }
  }
}

/**
 * The top k right singular vectors of A (the principal directions of centred rows), by subspace iteration on AᵀA
 * from a random start. A few iterations suffice for the leading direction when it stands out, which is the case the
 * detectors look for.
 */
export function topDirections(a: Matrix, k: number, rng: Rng, iterations = 8): Float64Array[] {
  let vs: Float64Array[] = Array.from({ length: k }, () => Float64Array.from({ length: a.cols }, () => rng.normal()));
  orthonormalise(vs, rng);
  for (let it = 0; it < iterations; it++) {
    vs = vs.map((v) => mulT(a, mul(a, v)));
    orthonormalise(vs, rng);
  }
  return vs;
}

/** Each row of A projected on the directions: rows × k. */
export function project(a: Matrix, directions: Float64Array[]): Matrix {
  const k = directions.length;
  const out = new Float32Array(a.rows * k);
  directions.forEach((v, c) => {
    const p = mul(a, v);
    for (let r = 0; r < a.rows; r++) out[r * k + c] = p[r];
  });
  return { data: out, rows: a.rows, cols: k };
}

const dist2 = (m: Matrix, r: number, c: Float64Array) => {
  let s = 0;
  for (let j = 0; j < m.cols; j++) {
    const d = m.data[r * m.cols + j] - c[j];
    s += d * d;
  }
  return s;
};

/** 2-means with a k-means++ start; the assignment of each row (0 or 1). */
export function twoMeans(m: Matrix, rng: Rng, iterations = 30): Uint8Array {
  const first = Math.floor(rng.next() * m.rows);
  const c0 = Float64Array.from(m.data.subarray(first * m.cols, (first + 1) * m.cols));
  // The second centre drawn with probability proportional to the squared distance from the first.
  const d = Array.from({ length: m.rows }, (_, r) => dist2(m, r, c0));
  const total = d.reduce((a, b) => a + b, 0);
  let pick = rng.next() * total;
  let second = m.rows - 1;
  for (let r = 0; r < m.rows; r++) {
    pick -= d[r];
    if (pick <= 0) {
      second = r;
      break;
    }
  }
  const centres = [c0, Float64Array.from(m.data.subarray(second * m.cols, (second + 1) * m.cols))];
  const assign = new Uint8Array(m.rows);
  for (let it = 0; it < iterations; it++) {
    let moved = 0;
    for (let r = 0; r < m.rows; r++) {
      const a = dist2(m, r, centres[0]) <= dist2(m, r, centres[1]) ? 0 : 1;
      if (a !== assign[r]) moved++;
      assign[r] = a;
    }
    for (const k of [0, 1]) {
      const c = new Float64Array(m.cols);
      let n = 0;
      for (let r = 0; r < m.rows; r++)
        if (assign[r] === k) {
          n++;
          for (let j = 0; j < m.cols; j++) c[j] += m.data[r * m.cols + j];
        }
      if (n > 0) for (let j = 0; j < m.cols; j++) centres[k][j] = c[j] / n;
    }
    if (moved === 0 && it > 0) break;
  }
  return assign;
}

/**
 * Mean silhouette of a 2-way split, over at most `sample` rows (it is quadratic): near 1 when the two clusters are
 * well apart, near 0 when the split cuts one population in two.
 */
export function silhouette(m: Matrix, assign: Uint8Array, rng: Rng, sample = 1500): number {
  const rows = Array.from({ length: m.rows }, (_, r) => r);
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const chosen = rows.slice(0, Math.min(sample, m.rows));
  let sum = 0;
  let counted = 0;
  for (const r of chosen) {
    const mean = [0, 0];
    const n = [0, 0];
    for (const q of chosen) {
      if (q === r) continue;
      let s = 0;
      for (let j = 0; j < m.cols; j++) {
        const d = m.data[r * m.cols + j] - m.data[q * m.cols + j];
        s += d * d;
      }
      mean[assign[q]] += Math.sqrt(s);
      n[assign[q]]++;
    }
    const own = assign[r];
    if (n[own] === 0 || n[1 - own] === 0) continue;
    const a = mean[own] / n[own];
    const b = mean[1 - own] / n[1 - own];
    sum += (b - a) / Math.max(a, b);
    counted++;
  }
  return counted ? sum / counted : 0;
}
