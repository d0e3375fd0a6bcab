// One generator per fuzz case, derived from (run seed, parser, case number), so any case is reproduced alone from the
// three numbers a finding prints.
import { Rng } from '../engine/runtime/rng.js';

/** The engine's mulberry32 generator with the draws a mutator needs. */
export class FuzzRng {
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed | 0);
  }

  /** Uniform in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.rng.int(n);
  }

  /** Uniform in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Small counts are the common case, large ones stay possible: 1 with probability 1/2, 2 with 1/4, … */
  geometric(max: number): number {
    let n = 1;
    while (n < max && this.chance(0.5)) n++;
    return n;
  }

  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

/**
 * The generator of one case. The three inputs are mixed (a 32-bit finalizer) so neighbouring cases and neighbouring
 * seeds do not start from neighbouring mulberry32 states.
 */
export function caseRng(seed: number, parser: string, index: number): FuzzRng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  for (const c of `${parser}#${index}`) h = Math.imul(h ^ c.charCodeAt(0), 0xc2b2ae35) ^ (h >>> 13);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return new FuzzRng(h);
}
