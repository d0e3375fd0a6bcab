// Optimizers with state that a checkpoint can hold, so a resumed run continues exactly.
export type OptimizerKind = 'adam' | 'sgd';

export interface OptimizerState {
  kind: OptimizerKind;
  t: number;
  /** Adam's first and second moments, or SGD's velocity (in m). */
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export interface OptimizerOptions {
  kind: OptimizerKind;
  weightDecay?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
}

export class Optimizer {
  readonly state: OptimizerState;

  constructor(
    private readonly opts: OptimizerOptions,
    state?: OptimizerState,
  ) {
    this.state = state ?? { kind: opts.kind, t: 0, m: {}, v: {} };
    if (this.state.kind !== opts.kind)
      throw new Error(`the checkpoint's optimizer is ${this.state.kind}, not ${opts.kind}`);
  }

  step(weights: Map<string, Float32Array>, grads: Map<string, Float32Array>, lr: number): void {
    const s = this.state;
    s.t++;
    const wd = this.opts.weightDecay ?? 0;
    for (const [name, w] of weights) {
      const g = grads.get(name)!;
      const m = (s.m[name] ??= new Float32Array(w.length));
      if (s.kind === 'sgd') {
        const mu = this.opts.momentum ?? 0.9;
        for (let i = 0; i < w.length; i++) {
          m[i] = mu * m[i] + g[i] + wd * w[i];
          w[i] -= lr * m[i];
        }
        continue;
      }
      // Adam with decoupled weight decay (AdamW) when weightDecay > 0.
      const v = (s.v[name] ??= new Float32Array(w.length));
      const rate = (lr * Math.sqrt(1 - 0.999 ** s.t)) / (1 - 0.9 ** s.t);
      for (let i = 0; i < w.length; i++) {
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
        w[i] -= (rate * m[i]) / (Math.sqrt(v[i]) + 1e-8) + lr * wd * w[i];
      }
    }
  }
}

export type Schedule = 'constant' | 'cosine' | 'one-cycle';

/** Learning rate at step t of total: constant; cosine decay to 0; one-cycle (linear up to the peak at 30%, then down). */
export function learningRate(schedule: Schedule, peak: number, t: number, total: number): number {
  const f = Math.min(1, t / Math.max(1, total));
  if (schedule === 'cosine') return (peak * (1 + Math.cos(Math.PI * f))) / 2;
  if (schedule === 'one-cycle') return f < 0.3 ? peak * (0.04 + (0.96 * f) / 0.3) : peak * Math.max(0, (1 - f) / 0.7);
  return peak;
}
