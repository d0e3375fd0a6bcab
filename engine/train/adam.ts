/** Adam (Kingma & Ba), updating weights in place. */
export class Adam {
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private t = 0;

  constructor(
    private readonly lr = 1e-3,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {}

  step(weights: Map<string, Float32Array>, grads: Map<string, Float32Array>): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    const rate = (this.lr * Math.sqrt(c2)) / c1;
    for (const [name, w] of weights) {
      const g = grads.get(name)!;
      const m = this.m.get(name) ?? this.m.set(name, new Float32Array(w.length)).get(name)!;
      const v = this.v.get(name) ?? this.v.set(name, new Float32Array(w.length)).get(name)!;
      for (let i = 0; i < w.length; i++) {
        m[i] = this.beta1 * m[i] + (1 - this.beta1) * g[i];
        v[i] = this.beta2 * v[i] + (1 - this.beta2) * g[i] * g[i];
        w[i] -= (rate * m[i]) / (Math.sqrt(v[i]) + this.eps);
      }
    }
  }
}
