// The model being trained, at its current weights, as a gradient source for the attacks adversarial training runs.
import type { InferenceSession } from 'onnxruntime-node';
import { InputGradients, type GradientResult, type GradientSource } from '../attacks/target.js';
import type { LossKind } from '../autodiff/differentiate.js';
import type { ModelProto } from '../onnx/proto.js';
import { createSession, floatTensor } from '../runtime/session.js';
import { deployableModel, trainableModel, type Architecture } from './zoo.js';

/**
 * The model at its current weights, for attacks during training. Baked: its sessions hold the weights as
 * initializers and are rebuilt at the first attack after each weight update, because onnxruntime runs
 * convolutions with constant weights on its fast path; that pays off once an update runs two or more attack
 * passes (PGD-7 AT on the small CNN: 838 → 891–1011 images/s) but not for FGSM-RS's one (2802 → 2566). Otherwise the
 * weights are fed as inputs to sessions built once.
 */
export class LiveModel implements GradientSource {
  readonly sampleShape: number[];
  readonly sampleSize: number;
  readonly classes: number;
  private version = 0;
  private built?: { version: number; model: ModelProto; grads: InputGradients; forward?: Promise<InferenceSession> };

  constructor(
    private readonly arch: Architecture,
    private readonly weights: Map<string, Float32Array>,
    private readonly bake: boolean,
    private readonly threads?: number,
  ) {
    this.sampleShape = [...arch.input];
    this.sampleSize = arch.input.reduce((a, b) => a * b, 1);
    this.classes = arch.classes;
  }

  /** The weights changed in place: a baked model builds new sessions at its next attack. */
  changed(): void {
    if (this.bake) this.version++;
  }

  private async current() {
    if (this.built?.version !== this.version) {
      await this.release();
      const model = this.bake ? deployableModel(this.arch, this.weights) : trainableModel(this.arch);
      this.built = {
        version: this.version,
        model,
        grads: new InputGradients(model, 'input', this.arch.classes, { threads: this.threads, shortLived: this.bake }),
      };
    }
    return this.built;
  }

  private feeds(x: Float32Array, n: number): Record<string, ReturnType<typeof floatTensor>> {
    const f: Record<string, ReturnType<typeof floatTensor>> = { input: floatTensor(x, [n, ...this.arch.input]) };
    if (!this.bake) for (const p of this.arch.params) f[p.name] = floatTensor(this.weights.get(p.name)!, p.dims);
    return f;
  }

  async logits(x: Float32Array, n: number): Promise<Float32Array> {
    const b = await this.current();
    const forward = await (b.forward ??= createSession(b.model, { threads: this.threads, shortLived: this.bake }));
    return (await forward.run(this.feeds(x, n)))[forward.outputNames[0]].data as Float32Array;
  }

  async gradient(
    x: Float32Array,
    n: number,
    labels: ArrayLike<number>,
    loss?: LossKind,
    targets?: ArrayLike<number>,
  ): Promise<GradientResult> {
    return (await this.current()).grads.run(this.feeds(x, n), n, labels, loss, targets);
  }

  async release(): Promise<void> {
    const b = this.built;
    this.built = undefined;
    if (!b) return;
    await b.grads.release();
    if (b.forward) await (await b.forward).release();
  }
}
