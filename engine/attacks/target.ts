// The model under attack: weights baked in (ORT's fast conv path), one forward session and one gradient session
// per loss, created on first use.
import type { InferenceSession } from 'onnxruntime-node';
import { differentiate, type GradientModel, type LossKind } from '../autodiff/differentiate.js';
import { InputError } from '../input-error.js';
import type { ModelProto } from '../onnx/proto.js';
import { num } from '../onnx/proto.js';
import { createSession, floatTensor, int64Tensor, type SessionOptions } from '../runtime/session.js';

export interface GradientResult {
  logits: Float32Array;
  /** Per-sample gradient of the loss (the batch mean's gradient times the batch size). */
  grad: Float32Array;
}

/** What an attack needs from a model: logits and per-sample loss gradients for a batch. */
export interface GradientSource {
  readonly sampleShape: number[];
  readonly sampleSize: number;
  readonly classes: number;
  logits(x: Float32Array, n: number): Promise<Float32Array>;
  gradient(
    x: Float32Array,
    n: number,
    labels: ArrayLike<number>,
    loss?: LossKind,
    targets?: ArrayLike<number>,
  ): Promise<GradientResult>;
}

type Feeds = Record<string, ReturnType<typeof floatTensor>>;

/** A model's input-gradient sessions, one per loss, built on first use. */
export class InputGradients {
  private readonly built = new Map<LossKind, Promise<{ g: GradientModel; s: InferenceSession }>>();

  constructor(
    private readonly model: ModelProto,
    private readonly input: string,
    private readonly classes: number,
    private readonly opts: SessionOptions,
  ) {}

  /** `feeds` holds the input (and any weights); labels and the loss's targets are added here. */
  async run(
    feeds: Feeds,
    n: number,
    labels: ArrayLike<number>,
    loss: LossKind = 'cross-entropy',
    targets?: ArrayLike<number>,
  ): Promise<GradientResult> {
    let entry = this.built.get(loss);
    if (!entry) {
      entry = (async () => {
        const g = differentiate(this.model, { wrt: [this.input], loss });
        return { g, s: await createSession(g.model, this.opts) };
      })();
      this.built.set(loss, entry);
    }
    const { g, s } = await entry;
    const all: Feeds = { ...feeds, [g.labels]: int64Tensor(labels, [n]) };
    if (g.targets) {
      if (!targets) throw new Error(`the ${loss} loss needs targets`);
      all[g.targets] =
        loss === 'soft-cross-entropy'
          ? floatTensor(Float32Array.from(targets), [n, this.classes])
          : int64Tensor(targets, [n]);
    }
    const out = await s.run(all);
    const grad = out[g.grads[this.input]].data as Float32Array;
    for (let i = 0; i < grad.length; i++) grad[i] *= n;
    return { logits: out[g.logits].data as Float32Array, grad };
  }

  /** Frees the sessions' native memory now rather than at some later garbage collection. */
  async release(): Promise<void> {
    const entries = [...this.built.values()];
    this.built.clear();
    for (const e of entries) await (await e).s.release();
  }
}

export class AttackTarget implements GradientSource {
  private readonly grads: InputGradients;

  private constructor(
    readonly model: ModelProto,
    private readonly forward: InferenceSession,
    readonly input: string,
    readonly sampleShape: number[],
    readonly classes: number,
    opts: SessionOptions,
  ) {
    this.grads = new InputGradients(model, input, classes, opts);
  }

  static async create(model: ModelProto, opts: SessionOptions = {}): Promise<AttackTarget> {
    const graph = model.graph!;
    const inits = new Set((graph.initializer ?? []).map((t) => t.name));
    const input = (graph.input ?? []).find((i) => !inits.has(i.name));
    if (!input) throw new InputError('the model has no input');
    const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d) => num(d.dimValue));
    if (dims.length < 2 || dims.slice(1).some((d) => d <= 0))
      throw new InputError(`input "${input.name}" needs static sizes after the batch, got [${dims.join(', ')}]`);
    const session = await createSession(model, opts);
    const probe = await session.run({
      [input.name!]: floatTensor(new Float32Array(dims.slice(1).reduce((a, b) => a * b, 1)), [1, ...dims.slice(1)]),
    });
    const out = probe[session.outputNames[0]];
    if (out.dims.length !== 2)
      throw new InputError(`the first output must be logits [N, classes], got [${out.dims.join(', ')}]`);
    return new AttackTarget(model, session, input.name!, dims.slice(1), out.dims[1], opts);
  }

  get sampleSize(): number {
    return this.sampleShape.reduce((a, b) => a * b, 1);
  }

  async logits(x: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.forward.run({ [this.input]: floatTensor(x, [n, ...this.sampleShape]) });
    return out[this.forward.outputNames[0]].data as Float32Array;
  }

  async gradient(
    x: Float32Array,
    n: number,
    labels: ArrayLike<number>,
    loss?: LossKind,
    targets?: ArrayLike<number>,
  ): Promise<GradientResult> {
    return this.grads.run({ [this.input]: floatTensor(x, [n, ...this.sampleShape]) }, n, labels, loss, targets);
  }
}
