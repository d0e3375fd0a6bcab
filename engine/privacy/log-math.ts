// Log-space arithmetic for the privacy accountant: sums of terms far outside double range, binomial coefficients of
// fractional orders, and log erfc deep into the tail where erfc itself underflows.

/** log(e^x + e^y) without overflow. */
export function logAdd(x: number, y: number): number {
  const [a, b] = x < y ? [x, y] : [y, x];
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/**
 * log |binom(alpha, i)| for real alpha and i = 0..n-1, by the recurrence binom(a, i+1) = binom(a, i)·(a-i)/(i+1).
 * For integer alpha the terms past alpha are zero (-Infinity).
 */
export function logAbsBinomials(alpha: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let log = 0;
  for (let i = 0; i < n; i++) {
    out[i] = log;
    const f = alpha - i;
    log = f === 0 ? -Infinity : log + Math.log(Math.abs(f)) - Math.log(i + 1);
  }
  return out;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** erf(x) by its Taylor series: accurate to a few ulps for |x| ≤ 2, where it converges fast. */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/**
 * log of erfc(x)·e^{x²}·√π for x ≥ 2, by the continued fraction 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))),
 * evaluated with the modified Lentz method.
 */
function logScaledErfcTail(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 5000; k++) {
    const a = k / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

/** log erfc(x) for any x, accurate in relative terms where erfc underflows (x > 26) too. */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.log(2);
  if (x >= 2) return -x * x - LOG_SQRT_PI + logScaledErfcTail(x);
  if (x >= 0) return Math.log1p(-erfSeries(x));
  if (x > -2) return Math.log1p(-erfSeries(x));
  // erfc(x) = 2 - erfc(-x) for negative x.
  return Math.log(2 - Math.exp(logErfc(-x)));
}
