// The privacy accountant of DP-SGD: Rényi differential privacy of the Poisson-subsampled Gaussian mechanism
// (Mironov, Talwar, Zhang 2019), composed over steps by adding RDP, and converted to (ε, δ) with the conversion of
// Balle et al. 2020 that TF Privacy, dp-accounting and Opacus use. A port of dp-accounting's rdp_privacy_accountant
// (its integer- and fractional-order sums, and compute_epsilon), checked against published values in the tests.
import { logAbsBinomials, logAdd, logErfc } from './log-math.js';

/** The usual orders: 1.1 to 10.9 by 0.1, 11 to 63, 128, 256, 512. */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => Math.round((1.1 + i * 0.1) * 10) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
];

/** A parameter out of range, named as the CLI and the policy name it. */
export class PrivacyParameterError extends Error {
  constructor(
    readonly option: string,
    detail: string,
  ) {
    super(`${option}: ${detail}`);
    this.name = 'PrivacyParameterError';
  }
}

export interface Mechanism {
  /** Poisson sampling rate q: each example joins each batch independently with this probability. */
  sampleRate: number;
  /** σ: the Gaussian noise's standard deviation over the clipping norm. */
  noiseMultiplier: number;
  steps: number;
}

export function checkMechanism(m: Mechanism): void {
  if (!(m.sampleRate > 0 && m.sampleRate <= 1))
    throw new PrivacyParameterError('--sample-rate', `must be in (0, 1], got ${m.sampleRate}`);
  if (!(m.noiseMultiplier > 0))
    throw new PrivacyParameterError('--noise-multiplier', `must be above 0, got ${m.noiseMultiplier}`);
  if (!(Number.isInteger(m.steps) && m.steps >= 0))
    throw new PrivacyParameterError('--steps', `must be a whole number of steps ≥ 0, got ${m.steps}`);
}

function checkDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) throw new PrivacyParameterError('--delta', `must be in (0, 1), got ${delta}`);
}

function logAInt(q: number, sigma: number, alpha: number): number {
  const logq = Math.log(q);
  const log1mq = Math.log1p(-q);
  const binom = logAbsBinomials(alpha, alpha + 1);
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++)
    logA = logAdd(logA, binom[i] + i * logq + (alpha - i) * log1mq + (i * i - i) / (2 * sigma * sigma));
  return logA;
}

const MAX_FRACTIONAL_TERMS = 1000;

function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logq = Math.log(q);
  const log1mq = Math.log1p(-q);
  const binom = logAbsBinomials(alpha, MAX_FRACTIONAL_TERMS);
  let lastS0 = -Infinity;
  let lastS1 = -Infinity;
  for (let i = 0; i < MAX_FRACTIONAL_TERMS; i++) {
    const j = alpha - i;
    const logT0 = binom[i] + i * logq + j * log1mq;
    const logT1 = binom[i] + j * logq + i * log1mq;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    logA0 = logAdd(logA0, logS0);
    logA1 = logAdd(logA1, logS1);
    const total = logAdd(logA0, logA1);
    if (logS0 < lastS0 && logS1 < lastS1 && Math.max(logS0, logS1) < total - 30) return total;
    lastS0 = logS0;
    lastS1 = logS1;
  }
  // The series did not settle (a tiny σ): no finite bound at this order, which the conversion then skips.
  return Infinity;
}

/** RDP of one step at order alpha. */
export function stepRdp(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (!Number.isFinite(alpha)) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` steps at each order (composition adds it). */
export function composedRdp(m: Mechanism, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkMechanism(m);
  return orders.map((a) => m.steps * stepRdp(m.sampleRate, m.noiseMultiplier, a));
}

export interface Spent {
  epsilon: number;
  /** The order whose bound was tightest. */
  order: number;
}

/**
 * (ε, δ) from RDP. 'improved' is Balle et al. 2020 (ε = r + log(1 - 1/α) - log(δ·α)/(α - 1), with the KL
 * bound's ε = 0 when δ² + e^{-r} - 1 > 0); 'classic' is Mironov 2017's ε = r - log δ/(α - 1), which older
 * published values used, kept so they can be checked.
 */
export function epsilonFromRdp(
  rdp: readonly number[],
  delta: number,
  orders: readonly number[] = DEFAULT_ORDERS,
  conversion: 'improved' | 'classic' = 'improved',
): Spent {
  checkDelta(delta);
  let best: Spent = { epsilon: Infinity, order: orders[0] };
  orders.forEach((a, k) => {
    const r = rdp[k];
    let eps: number;
    if (conversion === 'classic') eps = r - Math.log(delta) / (a - 1);
    else if (r < 0) eps = 0;
    else if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  });
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/** ε spent by DP-SGD with these parameters. */
export function epsilon(
  m: Mechanism,
  delta: number,
  o: { orders?: readonly number[]; conversion?: 'improved' | 'classic' } = {},
): Spent {
  checkDelta(delta);
  const orders = o.orders ?? DEFAULT_ORDERS;
  return epsilonFromRdp(composedRdp(m, orders), delta, orders, o.conversion);
}

/** Steps of `epochs` epochs at sample rate q: an epoch is ceil(1/q) steps (as Opacus counts them; DP-SGD trains so). */
export function stepsFor(sampleRate: number, epochs: number): number {
  return Math.ceil(epochs) * Math.ceil(1 / sampleRate - 1e-9);
}

const SIGMA_MIN = 0.05;
const SIGMA_MAX = 1000;

/**
 * The smallest noise multiplier (to 4 significant digits, rounded up so the target holds) whose ε after `epochs`
 * epochs at sample rate q is at most the target. Throws, naming --target-epsilon, when even σ = 1000 overshoots.
 */
export function noiseFor(sampleRate: number, epochs: number, targetEpsilon: number, delta: number): number {
  if (!(targetEpsilon > 0))
    throw new PrivacyParameterError('--target-epsilon', `must be above 0, got ${targetEpsilon}`);
  if (!(Number.isInteger(epochs) && epochs > 0))
    throw new PrivacyParameterError('--epochs', `must be a whole number above 0, got ${epochs}`);
  checkMechanism({ sampleRate, noiseMultiplier: 1, steps: 0 });
  checkDelta(delta);
  const steps = stepsFor(sampleRate, epochs);
  const eps = (sigma: number) => epsilon({ sampleRate, noiseMultiplier: sigma, steps }, delta).epsilon;
  if (eps(SIGMA_MAX) > targetEpsilon)
    throw new PrivacyParameterError(
      '--target-epsilon',
      `ε ${targetEpsilon} is out of reach: even noise multiplier ${SIGMA_MAX} spends ` +
        `ε ${eps(SIGMA_MAX).toPrecision(3)} in ${epochs} epochs at sample rate ${sampleRate}`,
    );
  let lo = SIGMA_MIN;
  let hi = SIGMA_MAX;
  if (eps(lo) <= targetEpsilon) return lo;
  // ε falls as σ grows: bisect in log space to a relative width of 1e-5.
  while (hi / lo > 1 + 1e-5) {
    const mid = Math.sqrt(lo * hi);
    if (eps(mid) <= targetEpsilon) hi = mid;
    else lo = mid;
  }
  const digits = 10 ** (3 - Math.floor(Math.log10(hi)));
  const rounded = Math.ceil(hi * digits) / digits;
  return rounded;
}
