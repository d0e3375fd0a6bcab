// Drift of one window against the reference: the population stability index (binned at the reference's deciles)
// and the two-sample Kolmogorov–Smirnov test (statistic and asymptotic p-value).

/** Proportions below this are floored: an empty bin would make the index infinite. */
const FLOOR = 1e-4;

/** PSI of two distributions given as proportions over the same bins: Σ (a − e) ln(a / e). */
export function psiOf(expected: number[], actual: number[]): number {
  let psi = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i], FLOOR);
    const a = Math.max(actual[i], FLOOR);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}

/** PSI of a continuous statistic: bins at the reference's quantiles (deciles by default). */
export function psiContinuous(referenceSorted: number[], sample: number[], bins = 10): number {
  const edges: number[] = [];
  for (let b = 1; b < bins; b++) edges.push(referenceSorted[Math.floor((b * referenceSorted.length) / bins)]);
  const share = (values: number[]) => {
    const counts = new Array<number>(bins).fill(0);
    for (const v of values) counts[binOf(edges, v)]++;
    return counts.map((c) => c / values.length);
  };
  return psiOf(share(referenceSorted), share(sample));
}

/** PSI of a categorical distribution given as counts. */
export function psiCounts(reference: number[], sample: number[]): number {
  const total = (c: number[]) => c.reduce((a, b) => a + b, 0) || 1;
  const r = total(reference);
  const s = total(sample);
  return psiOf(
    reference.map((c) => c / r),
    sample.map((c) => c / s),
  );
}

/** The first bin whose upper edge exceeds v (binary search over the sorted edges). */
function binOf(edges: number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v < edges[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Two-sample KS: the largest gap between the empirical CDFs, and its asymptotic p-value. */
export function ksTest(aSorted: number[], b: number[]): { d: number; p: number } {
  const bs = [...b].sort((x, y) => x - y);
  const n = aSorted.length;
  const m = bs.length;
  if (n === 0 || m === 0) return { d: 0, p: 1 };
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const v = Math.min(aSorted[i], bs[j]);
    // Step past every value equal to v on both sides, so ties do not open a false gap.
    while (i < n && aSorted[i] === v) i++;
    while (j < m && bs[j] === v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const en = Math.sqrt((n * m) / (n + m));
  return { d, p: kolmogorovQ((en + 0.12 + 0.11 / en) * d) };
}

/** Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2 j² λ²}, the Kolmogorov distribution's tail (Numerical Recipes 14.3). */
export function kolmogorovQ(lambda: number): number {
  if (lambda < 0.2) return 1;
  let sum = 0;
  let sign = 1;
  for (let j = 1; j <= 100; j++) {
    const term = sign * Math.exp(-2 * j * j * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
    sign = -sign;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}
