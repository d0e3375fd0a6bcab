// Distillation in training: the teacher's logits softened at temperature T become the student's targets (the loss
// and its gradient are in engine/autodiff/distill-loss.ts). Without a teacher, one-hot targets at T train the network
// at temperature T: the first network of defensive distillation (Papernot et al. 2016), deployed at T = 1.
import type { InferenceSession } from 'onnxruntime-node';
import { InputError } from '../input-error.js';
import type { ModelProto } from '../onnx/proto.js';
import { createSession, floatTensor } from '../runtime/session.js';
import type { Architecture } from './zoo.js';

export interface DistillConfig {
  temperature: number;
  /** The weight of the soft term; 1 - alpha goes to the hard labels at T = 1. */
  alpha: number;
  teacher?: ModelProto;
  /** Names the teacher in checkpoints, so a resume with another teacher is refused. */
  teacherSha256?: string;
}

export function checkDistill(d: DistillConfig, defense: string, cutmix: boolean): void {
  if (!(d.temperature > 0) || !Number.isFinite(d.temperature))
    throw new InputError(`distill: the temperature must be above 0, got ${d.temperature}`);
  if (!(d.alpha >= 0 && d.alpha <= 1)) throw new InputError(`distill: alpha must be in [0, 1], got ${d.alpha}`);
  if (!d.teacher && d.alpha !== 1)
    throw new InputError('distill: without a teacher the network trains at temperature T alone: alpha must be 1');
  if (cutmix) throw new InputError('distill: combining distillation with CutMix is not built yet');
  if (defense === 'trades') throw new InputError('distill: combining distillation with TRADES is not built yet');
}

export function distillSettings(d: DistillConfig) {
  return { temperature: d.temperature, alpha: d.alpha, teacher: d.teacherSha256 ?? (d.teacher ? 'given' : 'none') };
}

export function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  const t = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) t[i * classes + labels[i]] = 1;
  return t;
}

/** The teacher's probabilities at temperature T for a batch. */
export class Teacher {
  private constructor(
    private readonly session: InferenceSession,
    private readonly shape: number[],
    private readonly classes: number,
    private readonly temperature: number,
  ) {}

  static async create(d: DistillConfig, arch: Architecture, threads?: number): Promise<Teacher> {
    const session = await createSession(d.teacher!, { threads });
    const t = new Teacher(session, [...arch.input], arch.classes, d.temperature);
    // One probe tells a teacher with other inputs or classes from a usable one, before any step runs.
    const probe = await session
      .run({
        [session.inputNames[0]]: floatTensor(new Float32Array(t.shape.reduce((a, b) => a * b, 1)), [1, ...t.shape]),
      })
      .catch(async (e: Error) => {
        await session.release();
        throw new InputError(`distill: the teacher does not take [N, ${t.shape.join(', ')}] inputs: ${e.message}`);
      });
    const dims = probe[session.outputNames[0]].dims;
    if (dims.length !== 2 || dims[1] !== arch.classes) {
      await session.release();
      throw new InputError(
        `distill: the teacher's first output is [${dims.join(', ')}], not logits [N, ${arch.classes}]`,
      );
    }
    return t;
  }

  async soft(x: Float32Array, n: number): Promise<Float32Array> {
    const out = await this.session.run({ [this.session.inputNames[0]]: floatTensor(x, [n, ...this.shape]) });
    const z = out[this.session.outputNames[0]].data as Float32Array;
    const p = new Float32Array(z.length);
    for (let i = 0; i < n; i++) {
      const row = z.subarray(i * this.classes, (i + 1) * this.classes);
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      let sum = 0;
      for (let k = 0; k < this.classes; k++)
        sum += p[i * this.classes + k] = Math.exp((row[k] - max) / this.temperature);
      for (let k = 0; k < this.classes; k++) p[i * this.classes + k] /= sum;
    }
    return p;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
