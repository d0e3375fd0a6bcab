// Reading ONNX models safely: every check runs before onnxruntime sees the bytes, so a hostile file gets a clear
// error instead of a crash or a huge allocation.
import { RegularFileError, readRegular } from '../io/regular-file.js';
import {
  ELEMENT_BYTES,
  num,
  onnx,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type SparseTensorProto,
  type TensorProto,
} from './proto.js';
import { MODEL_LIMITS, type LoadOptions, type ModelLimits } from './limits.js';
import { DepthError, expandedNodeCount, walkModel } from './walk.js';
import { WireError, checkWire } from './wire.js';

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

export { MODEL_LIMITS, type LoadOptions, type ModelLimits } from './limits.js';

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<ModelProto> {
  const maxBytes = opts.maxBytes ?? MODEL_LIMITS.maxBytes;
  let bytes: Buffer;
  try {
    bytes = await readRegular(path, maxBytes);
  } catch (e) {
    if (e instanceof RegularFileError) throw new OnnxError(path, e.why);
    throw e;
  }
  return parseModel(bytes, path, opts);
}

export function parseModel(bytes: Uint8Array, file: string, opts: LoadOptions = {}): ModelProto {
  if (bytes.length === 0) throw new OnnxError(file, 'the file is empty');
  const maxBytes = opts.maxBytes ?? MODEL_LIMITS.maxBytes;
  if (bytes.length > maxBytes)
    throw new OnnxError(file, `the model is ${mb(bytes.length)}, over the ${mb(maxBytes)} limit (maxBytes)`);
  const limits: ModelLimits = { ...MODEL_LIMITS, ...opts };
  try {
    checkWire(bytes, {
      maxMessages: limits.maxMessages,
      maxValues: limits.maxValues,
      // A subgraph level is three messages deep (graph, node, attribute), and a value's type a few more.
      maxNesting: 3 * limits.maxGraphDepth + 16,
    });
  } catch (e) {
    if (e instanceof WireError)
      throw new OnnxError(
        file,
        e.malformed ? `not an ONNX model: the protobuf does not decode (${e.message})` : e.message,
      );
    throw e;
  }
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
  const limits: ModelLimits = { ...MODEL_LIMITS, ...opts };
  const graph = model.graph;
  if (!graph || !graph.node?.length)
    throw new OnnxError(file, 'not an ONNX model: it has no graph or the graph has no nodes');
  const opsets = model.opsetImport ?? [];
  const domains = opsets.map((o) => (!o.domain || o.domain === 'ai.onnx' ? 'ai.onnx' : o.domain));
  const twice = domains.find((d, i) => domains.indexOf(d) !== i);
  // The check reads the first import of a domain and onnxruntime the last: only one may exist.
  if (twice) throw new OnnxError(file, `the model imports the ${twice} opset twice`);
  const core = opsets.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!core) throw new OnnxError(file, 'the model imports no ai.onnx opset');
  const version = num(core.version);
  if (version < OPSET_RANGE.min || version > OPSET_RANGE.max) {
    throw new OnnxError(file, `opset ${version} is outside the supported range ${OPSET_RANGE.min}-${OPSET_RANGE.max}`);
  }
  const local = new Set((model.functions ?? []).map((f) => `${f.domain ?? ''}:${f.name ?? ''}`));
  const unknown = new Set<string>();
  let initializers = 0;
  let total = 0;
  const over = (what: string, limit: keyof ModelLimits, shown: string) =>
    new OnnxError(file, `${what}, over the limit of ${shown} (${limit}; raise it with --${flag(limit)} or the policy)`);
  const count = (bytes: number, where: string) => {
    initializers++;
    if (initializers > limits.maxInitializers)
      throw over(`more than ${limits.maxInitializers} tensors`, 'maxInitializers', String(limits.maxInitializers));
    total += bytes;
    if (total > limits.maxTotalTensorBytes)
      throw over(`tensors up to ${where} declare ${mb(total)}`, 'maxTotalTensorBytes', mb(limits.maxTotalTensorBytes));
  };
  try {
    walkModel(
      model,
      {
        node: (node, where) => {
          const key = `${node.domain ?? ''}:${node.opType ?? ''}`;
          if (node.domain && node.domain !== 'ai.onnx' && !local.has(key))
            unknown.add(`${node.domain}::${node.opType} (${where})`);
        },
        tensor: (t, where) => count(checkTensor(t, where, file, limits.maxTensorBytes), where),
        sparse: (s, where) => count(checkSparse(s, where, file, limits.maxTensorBytes), where),
      },
      limits.maxGraphDepth,
    );
  } catch (e) {
    if (e instanceof DepthError)
      throw over(
        `graphs nested more than ${limits.maxGraphDepth} deep (${e.where})`,
        'maxGraphDepth',
        String(limits.maxGraphDepth),
      );
    throw e;
  }
  if (unknown.size > 0) throw new OnnxError(file, `ops from unknown domains: ${[...unknown].slice(0, 5).join(', ')}`);
  const nodes = expandedNodeCount(model);
  if (nodes === undefined) throw new OnnxError(file, 'a local function calls itself (directly or through others)');
  if (nodes > limits.maxNodes)
    throw over(`${nodes} nodes (local functions expanded)`, 'maxNodes', String(limits.maxNodes));
}

const flag = (limit: keyof ModelLimits) => limit.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Refuses external data and inconsistent or oversized tensors; returns the tensor's declared size in bytes. */
function checkTensor(t: TensorProto, where: string, file: string, maxBytes: number): number {
  const name = where;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0) {
    const location = t.externalData?.find((e) => e.key === 'location')?.value ?? '';
    throw new OnnxError(
      file,
      `${name} keeps its data in the external file "${location}"; external data is refused (onnxruntime would ` +
        'read it from the working directory): embed the weights',
    );
  }
  const dims = (t.dims ?? []).map(num);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d)))
    throw new OnnxError(file, `${name} has invalid dimensions ${dims.join('×')}`);
  const size = ELEMENT_BYTES[t.dataType ?? 0];
  if (size === undefined)
    throw new OnnxError(file, `${name} has element type ${t.dataType ?? 0}, which has no known size; refused`);
  const elements = dims.reduce((a, b) => a * b, 1);
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
  // float16, bfloat16 and the small integer types pack into int32_data one value per entry, like the rest.
  if (raw > 0 ? raw !== declared : typed !== elements) {
    throw new OnnxError(
      file,
      `${name} declares ${dims.join('×')} elements but holds ${raw > 0 ? `${raw} bytes` : `${typed} values`}`,
    );
  }
  return declared;
}

/** A sparse tensor counts at its dense size: onnxruntime expands sparse initializers when it loads them. */
function checkSparse(s: SparseTensorProto, where: string, file: string, maxBytes: number): number {
  if (!s.values) throw new OnnxError(file, `${where} has no values`);
  checkTensor(s.values, `${where} (values)`, file, maxBytes);
  if (s.indices) checkTensor(s.indices, `${where} (indices)`, file, maxBytes);
  const dims = (s.dims ?? []).map(num);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d)))
    throw new OnnxError(file, `${where} has invalid dense dimensions ${dims.join('×')}`);
  const dense = dims.reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[s.values.dataType ?? 0] ?? 0);
  if (dense > maxBytes)
    throw new OnnxError(
      file,
      `${where} expands to ${dims.join('×')} elements (${mb(dense)}), over the ${mb(maxBytes)} tensor limit`,
    );
  return dense;
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

export function saveModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** The model's first non-initializer input: its name and one example's dimensions, which must be [N, ...static]. */
export function modelInputShape(model: ModelProto): { name: string; shape: number[] } {
  const g = model.graph;
  const inits = new Set((g?.initializer ?? []).map((t) => t.name));
  const input = (g?.input ?? []).find((i) => !inits.has(i.name));
  const dims = (input?.type?.tensorType?.shape?.dim ?? []).map((d) => num(d.dimValue));
  if (!input?.name || dims.length < 2 || dims.slice(1).some((d) => !(d > 0)))
    throw new OnnxError('model', `the input must be [N, ...static sizes], got [${dims.join(', ')}]`);
  return { name: input.name, shape: dims.slice(1) };
}
