// Reading ONNX models safely: every check runs before onnxruntime sees the bytes, so a hostile file gets a clear
// error instead of a crash or a huge allocation.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import {
  ELEMENT_BYTES,
  num,
  onnx,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.js';

export class OnnxError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'OnnxError';
  }
}

/** Opsets whose semantics the engine's gradient rules follow. */
export const OPSET_RANGE = { min: 13, max: 21 } as const;
export const DEFAULT_MAX_BYTES = 512 * 1024 * 1024;
/** Declared tensor sizes above this are refused before anything is allocated. */
export const DEFAULT_MAX_TENSOR_BYTES = 1024 * 1024 * 1024;

export interface LoadOptions {
  maxBytes?: number;
  maxTensorBytes?: number;
}

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<ModelProto> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    throw new OnnxError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (size > maxBytes) throw new OnnxError(path, `the file is ${mb(size)}, over the ${mb(maxBytes)} limit`);
  return parseModel(await readFile(path), path, opts);
}

export function parseModel(bytes: Uint8Array, file: string, opts: LoadOptions = {}): ModelProto {
  if (bytes.length === 0) throw new OnnxError(file, 'the file is empty');
  if (bytes.length > (opts.maxBytes ?? DEFAULT_MAX_BYTES))
    throw new OnnxError(file, `the model is ${mb(bytes.length)}, over the limit`);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxError(file, `not an ONNX model: the protobuf does not decode (${(e as Error).message})`);
  }
  checkModel(model, file, opts);
  return model;
}

export function checkModel(model: ModelProto, file: string, opts: LoadOptions = {}): void {
  const graph = model.graph;
  if (!graph || !graph.node?.length)
    throw new OnnxError(file, 'not an ONNX model: it has no graph or the graph has no nodes');
  const opsets = model.opsetImport ?? [];
  const core = opsets.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!core) throw new OnnxError(file, 'the model imports no ai.onnx opset');
  const version = num(core.version);
  if (version < OPSET_RANGE.min || version > OPSET_RANGE.max) {
    throw new OnnxError(file, `opset ${version} is outside the supported range ${OPSET_RANGE.min}-${OPSET_RANGE.max}`);
  }
  const unknown = new Set<string>();
  visitGraph(graph, (node) => {
    if (node.domain && node.domain !== 'ai.onnx')
      unknown.add(`${node.domain}::${node.opType} (node ${node.name || '?'})`);
  });
  if (unknown.size > 0) throw new OnnxError(file, `ops from unknown domains: ${[...unknown].join(', ')}`);
  const maxTensor = opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES;
  visitTensors(graph, (t, where) => checkTensor(t, where, file, maxTensor));
}

function checkTensor(t: TensorProto, where: string, file: string, maxBytes: number): void {
  const name = `${where} "${t.name ?? ''}"`;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0) {
    const location = t.externalData?.find((e) => e.key === 'location')?.value ?? '';
    const folder = dirname(resolve(file));
    const target = resolve(folder, location);
    if (!location || isAbsolute(location) || relative(folder, target).startsWith('..')) {
      throw new OnnxError(
        file,
        `${name} refers to external data at "${location}", outside the model's folder; refused`,
      );
    }
    throw new OnnxError(
      file,
      `${name} keeps its data in the external file "${basename(location)}"; external data is not supported, embed the weights`,
    );
  }
  const dims = (t.dims ?? []).map(num);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d)))
    throw new OnnxError(file, `${name} has invalid dimensions ${dims.join('×')}`);
  const elements = dims.reduce((a, b) => a * b, 1);
  const size = ELEMENT_BYTES[t.dataType ?? 0];
  if (size === undefined) return;
  const declared = elements * size;
  if (declared > maxBytes)
    throw new OnnxError(
      file,
      `${name} declares ${dims.join('×')} elements (${mb(declared)}), over the ${mb(maxBytes)} tensor limit`,
    );
  const raw = t.rawData?.length ?? 0;
  const typed =
    (t.floatData?.length ?? 0) +
    (t.int32Data?.length ?? 0) +
    (t.int64Data?.length ?? 0) +
    (t.doubleData?.length ?? 0) +
    (t.uint64Data?.length ?? 0);
  if (raw > 0 ? raw !== declared : typed !== elements) {
    throw new OnnxError(
      file,
      `${name} declares ${dims.join('×')} elements but holds ${raw > 0 ? `${raw} bytes` : `${typed} values`}`,
    );
  }
}

export function visitGraph(graph: GraphProto, fn: (node: NodeProto) => void): void {
  for (const node of graph.node ?? []) {
    fn(node);
    for (const a of node.attribute ?? []) {
      if (a.g) visitGraph(a.g, fn);
      for (const g of a.graphs ?? []) visitGraph(g, fn);
    }
  }
}

function visitTensors(graph: GraphProto, fn: (t: TensorProto, where: string) => void): void {
  for (const t of graph.initializer ?? []) fn(t, 'initializer');
  visitGraph(graph, (node) => {
    for (const a of node.attribute ?? []) {
      if (a.t) fn(a.t, `attribute ${a.name} of node ${node.name || node.opType}`);
      for (const t of a.tensors ?? []) fn(t, `attribute ${a.name} of node ${node.name || node.opType}`);
    }
  });
}

export function saveModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}
