// A seeded generator in TypeScript: random starts and shuffles are fed to graphs as inputs, so runs reproduce
// (onnxruntime's own random ops keep their state inside the session).
/**
 * A generator keyed by (seed, a, b): evaluation keys its random draws by image index, so any range of a set draws
 * what the whole run draws for those images (sharded evaluation equals unsharded).
 */
export const keyedRng = (seed: number, a: number, b = 0) =>
  new Rng((Math.imul(seed ^ 0x5bd1e995, 2654435761) ^ Math.imul(a + 1, 40503) ^ Math.imul(b + 7, 2246822519)) >>> 0);

export class Rng {
  constructor(private state: number) {}

  /** Uniform in [0, 1) (mulberry32). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 boosted with U^(1/shape). */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(1 - this.next(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.next();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  }

  /** Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    return x / (x + this.gamma(b));
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  shuffle(n: number): Uint32Array {
    const p = Uint32Array.from({ length: n }, (_v, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  get seed(): number {
    return this.state;
  }
}
