// onnxruntime-node sessions with the settings measured in ENGINE-NOTES: threads no more than cores, no spinning
// (sessions that alternate on two cores otherwise fight), and the execution provider from configuration.
import * as ort from 'onnxruntime-node';
import { cpus } from 'node:os';
import { saveModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto.js';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionOptions {
  threads?: number;
  executionProvider?: ExecutionProvider;
  /**
   * A session run only a few times (the trainer's attack sessions, rebuilt after every weight update): without a
   * memory pattern, whose planned block onnxruntime allocates afresh on the second run (measured: runs 1–2 took
   * 1.4× run 3 with it, run 2 on par without it).
   */
  shortLived?: boolean;
}

export function executionProviderFromEnv(env: NodeJS.ProcessEnv = process.env): ExecutionProvider {
  const ep = env.SECMLOPS_EXECUTION_PROVIDER ?? 'cpu';
  if (ep !== 'cpu' && ep !== 'cuda') throw new Error(`SECMLOPS_EXECUTION_PROVIDER must be cpu or cuda, not "${ep}"`);
  return ep;
}

export async function createSession(
  model: ModelProto | Uint8Array,
  opts: SessionOptions = {},
): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : saveModel(model);
  const threads = Math.max(1, Math.min(opts.threads ?? cpus().length, cpus().length));
  return ort.InferenceSession.create(bytes, {
    executionProviders: [opts.executionProvider ?? 'cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableMemPattern: !opts.shortLived,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}

export function floatTensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

export function int64Tensor(data: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (x) => BigInt(x))), dims);
}

export { ort };
