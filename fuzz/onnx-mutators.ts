// Structure-aware ONNX mutation: the seed is decoded, fields the model checks look at are changed (tensor dims and
// types, node counts, subgraphs, sparse tensors, external data, functions, training_info, opsets, names) and the
// model is re-encoded, so the result is still protobuf and reaches the checks behind the decoder. The walk here is
// the fuzzer's own, not engine/onnx/walk.ts: a location the engine's walk forgot must still get mutated.
import { HOSTILE_STRINGS } from './bytes.js';
import type { FuzzRng } from './rng.js';
import {
  AttributeType,
  DataType,
  num,
  onnx,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type SparseTensorProto,
  type TensorProto,
} from '../engine/onnx/proto.js';

type FunctionProto = NonNullable<ModelProto['functions']>[number];

/** Every graph, node and tensor of a model, wherever it sits. */
interface Parts {
  graphs: GraphProto[];
  nodes: NodeProto[];
  tensors: TensorProto[];
}

function collect(model: ModelProto): Parts {
  const parts: Parts = { graphs: [], nodes: [], tensors: [] };
  const node = (n: NodeProto, depth: number) => {
    parts.nodes.push(n);
    for (const a of n.attribute ?? []) {
      if (a.t) parts.tensors.push(a.t);
      parts.tensors.push(...(a.tensors ?? []));
      for (const s of [...(a.sparseTensor ? [a.sparseTensor] : []), ...(a.sparseTensors ?? [])]) sparse(s);
      for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) graph(g, depth + 1);
    }
  };
  const sparse = (s: SparseTensorProto) => {
    if (s.values) parts.tensors.push(s.values);
    if (s.indices) parts.tensors.push(s.indices);
  };
  // Depth-bounded: a mutated seed can nest graphs deeper than the stack, and the fuzzer must not be what crashes.
  const graph = (g: GraphProto, depth: number) => {
    if (depth > 64) return;
    parts.graphs.push(g);
    parts.tensors.push(...(g.initializer ?? []));
    for (const s of g.sparseInitializer ?? []) sparse(s);
    for (const n of g.node ?? []) node(n, depth);
  };
  if (model.graph) graph(model.graph, 0);
  for (const f of model.functions ?? []) for (const n of f.node ?? []) node(n, 1);
  for (const t of model.trainingInfo ?? []) {
    if (t.initialization) graph(t.initialization, 1);
    if (t.algorithm) graph(t.algorithm, 1);
  }
  return parts;
}

/** Dimensions at the edges of what int64, doubles and the engine's caps hold. */
const DIMS = [0, 1, -1, -(2 ** 31), 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53, 2 ** 53 + 2, 2 ** 62, 268_435_457];
const DATA_TYPES = [...Array.from({ length: 26 }, (_, i) => i), -1, 100, 2 ** 31 - 1];
const OPSETS = [0, 1, 12, 13, 17, 21, 22, 1000, -1, 2 ** 40];
const DOMAINS = ['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft', 'fz', 'evil'];
const EXTERNAL_PATHS = [
  '../../.secmlops/keys/release.key',
  '/etc/passwd',
  '/dev/zero',
  'weights.bin',
  'sub/../../x',
  '',
];
/** Node and initializer counts just under and just over the engine's default caps (5,000 each). */
const COUNTS = [1, 2, 10, 100, 4999, 5001];

const randomName = (rng: FuzzRng) => (rng.chance(0.5) ? rng.pick(HOSTILE_STRINGS) : `fz_${rng.int(1e6)}`);

/** A small float tensor, usually with one flaw a check should catch. */
function makeTensor(rng: FuzzRng, name = randomName(rng)): TensorProto {
  const n = rng.range(0, 8);
  const t: TensorProto = { name, dataType: DataType.FLOAT, dims: [n], rawData: new Uint8Array(n * 4) };
  switch (rng.int(6)) {
    case 0:
      t.dims = [rng.pick(DIMS), ...(rng.chance(0.5) ? [rng.pick(DIMS)] : [])];
      break;
    case 1:
      t.dataType = rng.pick(DATA_TYPES);
      break;
    case 2:
      t.rawData = new Uint8Array(rng.int(40));
      break;
    case 3:
      makeExternal(rng, t);
      break;
    default:
      break; // consistent: the checks must let it through
  }
  return t;
}

function makeExternal(rng: FuzzRng, t: TensorProto): void {
  if (rng.chance(0.8)) t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [{ key: 'location', value: rng.pick(EXTERNAL_PATHS) }];
  if (rng.chance(0.5)) t.externalData.push({ key: 'offset', value: String(rng.pick(DIMS)) });
  if (rng.chance(0.5)) t.externalData.push({ key: 'length', value: String(rng.pick(DIMS)) });
  if (rng.chance(0.7)) t.rawData = new Uint8Array(0);
}

function makeSparse(rng: FuzzRng): SparseTensorProto {
  const k = rng.range(0, 4);
  const values = makeTensor(rng, `sp_${rng.int(1e6)}`);
  if (rng.chance(0.5)) Object.assign(values, { dims: [k], rawData: new Uint8Array(k * 4), dataType: DataType.FLOAT });
  const indices: TensorProto = { dataType: DataType.INT64, dims: [k], rawData: new Uint8Array(k * 8) };
  const dims = rng.pick([[10], [100_000, 100_000], [2 ** 31, 2 ** 31], [-1], [], [2 ** 40]]);
  return { values: rng.chance(0.9) ? values : undefined, indices: rng.chance(0.8) ? indices : undefined, dims };
}

/** A one-node graph (Identity), optionally with an initializer, the body of the If and Loop nodes added below. */
function smallGraph(rng: FuzzRng, inner?: NodeProto): GraphProto {
  const g: GraphProto = {
    name: `sub_${rng.int(1e6)}`,
    node: [inner ?? { opType: 'Identity', input: ['x'], output: ['y'] }],
    output: [{ name: 'y' }],
  };
  if (rng.chance(0.4)) g.initializer = [makeTensor(rng)];
  if (rng.chance(0.2)) g.sparseInitializer = [makeSparse(rng)];
  return g;
}

/** An If node nesting `depth` Ifs deep in its then branch (one branch only: in both, the size would double per level). */
function nestedIf(rng: FuzzRng, depth: number): NodeProto {
  let node: NodeProto | undefined;
  for (let d = 0; d < depth; d++) {
    const branch = (name: string, inner?: NodeProto): AttributeProto => ({
      name,
      type: AttributeType.GRAPH,
      g: smallGraph(rng, inner),
    });
    node = {
      opType: 'If',
      input: ['cond'],
      output: [`if_${d}`],
      attribute: [branch('then_branch', node), branch('else_branch')],
    };
  }
  return node!;
}

function constantNode(rng: FuzzRng): NodeProto {
  const attribute: AttributeProto = rng.chance(0.7)
    ? { name: 'value', type: AttributeType.TENSOR, t: makeTensor(rng) }
    : { name: 'sparse_value', type: AttributeType.SPARSE_TENSOR, sparseTensor: makeSparse(rng) };
  return { opType: 'Constant', output: [`const_${rng.int(1e6)}`], attribute: [attribute] };
}

const core = (model: ModelProto) => (model.opsetImport ??= []).find((o) => !o.domain || o.domain === 'ai.onnx');

type OnnxMutator = (rng: FuzzRng, model: ModelProto, parts: Parts) => void;

export const ONNX_MUTATORS: Record<string, OnnxMutator> = {
  dims: (rng, _m, { tensors }) => {
    if (!tensors.length) return;
    const t = rng.pick(tensors);
    const dims = (t.dims ?? []).map(num);
    const op = rng.int(4);
    if (op === 0 && dims.length) dims[rng.int(dims.length)] = rng.pick(DIMS);
    else if (op === 1) dims.push(rng.pick(DIMS));
    else if (op === 2) dims.pop();
    else dims.splice(0, dims.length, ...Array.from({ length: rng.range(0, 3) }, () => rng.pick(DIMS)));
    t.dims = dims;
  },
  dataType: (rng, _m, { tensors }) => {
    if (tensors.length) rng.pick(tensors).dataType = rng.pick(DATA_TYPES);
  },
  tensorData: (rng, _m, { tensors }) => {
    if (!tensors.length) return;
    const t = rng.pick(tensors);
    const raw = t.rawData ?? new Uint8Array(0);
    const op = rng.int(4);
    if (op === 0) t.rawData = raw.subarray(0, rng.int(raw.length + 1));
    else if (op === 1) t.rawData = new Uint8Array(raw.length + rng.range(1, 9));
    else if (op === 2) {
      t.rawData = new Uint8Array(0);
      t.floatData = Array.from({ length: rng.int(Math.ceil(raw.length / 4) + 2) }, () => rng.int(100) / 10);
    } else t.int64Data = Array.from({ length: rng.range(1, 4) }, () => rng.pick(DIMS));
  },
  duplicateNodes: (rng, _m, { graphs }) => {
    const g = rng.pick(graphs);
    if (!g?.node?.length) return;
    const n = rng.pick(g.node);
    // A node holding subgraphs is copied at most 100 times: each copy is encoded whole, and thousands of copies of
    // a deep If cost the fuzzer gigabytes before the parser sees a byte.
    const nested = (n.attribute ?? []).some((a) => a.g || a.graphs?.length);
    const times = Math.min(rng.pick(COUNTS), nested ? 100 : Infinity);
    for (let i = 0; i < times; i++) g.node.push({ ...n, name: `${n.name ?? ''}_dup${i}` });
  },
  manyInitializers: (rng, _m, { graphs }) => {
    const g = rng.pick(graphs);
    if (!g) return;
    const times = rng.pick(COUNTS);
    g.initializer ??= [];
    for (let i = 0; i < times; i++)
      g.initializer.push({ name: `many_${i}`, dataType: DataType.FLOAT, dims: [1], rawData: new Uint8Array(4) });
  },
  attachSubgraph: (rng, _m, { graphs }) => {
    const g = rng.pick(graphs);
    if (g) (g.node ??= []).push(nestedIf(rng, rng.pick([1, 2, 3, 8, 9, 12, 40])));
  },
  loopBody: (rng, _m, { graphs }) => {
    const g = rng.pick(graphs);
    if (!g) return;
    const body: AttributeProto = { name: 'body', type: AttributeType.GRAPH, g: smallGraph(rng) };
    (g.node ??= []).push({ opType: rng.pick(['Loop', 'Scan']), input: ['', 'cond'], output: ['l'], attribute: [body] });
  },
  sparseInitializer: (rng, _m, { graphs }) => {
    const g = rng.pick(graphs);
    if (g) (g.sparseInitializer ??= []).push(makeSparse(rng));
  },
  constant: (rng, _m, { graphs }) => {
    const g = rng.pick(graphs);
    if (g) (g.node ??= []).push(constantNode(rng));
  },
  externalData: (rng, _m, { tensors }) => {
    if (tensors.length) makeExternal(rng, rng.pick(tensors));
  },
  functions: (rng, model) => {
    const n = rng.range(1, 4);
    const name = (i: number) => `f${i}`;
    const fns: FunctionProto[] = [];
    const shape = rng.int(4); // 0: chain, 1: self-recursive, 2: mutually recursive, 3: holds a tensor
    for (let i = 0; i < n; i++) {
      const callee = shape === 0 && i > 0 ? name(i - 1) : shape === 1 ? name(i) : shape === 2 ? name((i + 1) % n) : '';
      const fanOut = shape === 0 ? rng.pick([1, 2, 10, 100]) : 1;
      const node: NodeProto[] = Array.from({ length: fanOut }, () =>
        callee
          ? { opType: callee, domain: 'fz', input: ['x'], output: ['y'] }
          : { opType: 'Relu', input: ['x'], output: ['y'] },
      );
      if (shape === 3) node.push(constantNode(rng));
      fns.push({
        name: name(i),
        domain: 'fz',
        input: ['x'],
        output: ['y'],
        node,
        opsetImport: [{ domain: '', version: 17 }],
      });
    }
    model.functions = [...(model.functions ?? []), ...fns];
    (model.opsetImport ??= []).push({ domain: 'fz', version: 1 });
    if (model.graph)
      (model.graph.node ??= []).push({ opType: name(n - 1), domain: 'fz', input: ['x'], output: ['fy'] });
  },
  trainingInfo: (rng, model) => {
    const info = { initialization: smallGraph(rng), algorithm: rng.chance(0.5) ? smallGraph(rng) : undefined };
    info.initialization.initializer = [makeTensor(rng), ...(info.initialization.initializer ?? [])];
    model.trainingInfo = [...(model.trainingInfo ?? []), info];
  },
  opset: (rng, model) => {
    const op = rng.int(4);
    const c = core(model);
    if (op === 0 && c) c.version = rng.pick(OPSETS);
    else if (op === 1) model.opsetImport = (model.opsetImport ?? []).filter((o) => o !== c);
    else if (op === 2) model.opsetImport!.push({ domain: rng.pick(DOMAINS), version: rng.pick(OPSETS) });
    else if (c) c.domain = rng.pick(DOMAINS);
  },
  rename: (rng, model, { nodes }) => {
    const g = model.graph;
    const op = rng.int(3);
    if (op === 0 && g?.input?.length) rng.pick(g.input).name = randomName(rng);
    else if (op === 1 && g?.output?.length) rng.pick(g.output).name = randomName(rng);
    else if (nodes.length) {
      const n = rng.pick(nodes);
      const list = rng.chance(0.5) ? (n.input ??= []) : (n.output ??= []);
      if (list.length) list[rng.int(list.length)] = randomName(rng);
      else list.push(randomName(rng));
    }
  },
  domain: (rng, _m, { nodes }) => {
    if (nodes.length) rng.pick(nodes).domain = rng.pick(DOMAINS);
  },
  opType: (rng, _m, { nodes }) => {
    if (nodes.length) rng.pick(nodes).opType = rng.pick(['If', 'Loop', 'Constant', 'Foo', '', 'Conv', '__proto__']);
  },
  attribute: (rng, _m, { nodes }) => {
    if (!nodes.length) return;
    const n = rng.pick(nodes);
    const a: AttributeProto = n.attribute?.length ? rng.pick(n.attribute) : { name: randomName(rng) };
    if (!n.attribute?.includes(a)) (n.attribute ??= []).push(a);
    const op = rng.int(4);
    if (op === 0) a.type = rng.int(16);
    else if (op === 1) a.ints = Array.from({ length: rng.range(0, 6) }, () => rng.pick(DIMS));
    else if (op === 2) a.tensors = [makeTensor(rng), makeTensor(rng)];
    else a.graphs = [smallGraph(rng)];
  },
  dropGraph: (rng, model) => {
    if (rng.chance(0.3)) model.graph = undefined;
    else if (model.graph) model.graph.node = rng.chance(0.5) ? [] : model.graph.node?.slice(0, 1);
  },
  irVersion: (rng, model) => {
    model.irVersion = rng.pick([0, 1, 3, 7, 8, 10, 11, 99, -1]);
  },
};

/**
 * Applies one to a few structure-aware mutations in place and returns their names. The model is one freshly decoded
 * from a seed: mutations share sub-objects freely.
 */
export function mutateOnnx(rng: FuzzRng, model: ModelProto): string[] {
  const names = Object.keys(ONNX_MUTATORS);
  const applied: string[] = [];
  for (let i = rng.geometric(3); i > 0; i--) {
    const name = rng.pick(names);
    ONNX_MUTATORS[name](rng, model, collect(model));
    applied.push(name);
  }
  return applied;
}

/**
 * Repeated fields, at the wire level: protobuf merges every occurrence of an embedded message field, so appending
 * `graph { node {} node {} … }` (or initializers, inputs, functions, opset imports) to an encoded model adds K empty
 * entries without building K objects here. Each empty entry is two bytes on disk and a few hundred bytes once
 * decoded, which is what this measures: decoding happens before any count is checked.
 */
export function appendEmptyRepeated(rng: FuzzRng, encoded: Uint8Array): { bytes: Uint8Array; applied: string } {
  // [field in GraphProto (inside ModelProto.graph = 7) or in ModelProto itself, name]
  const where = rng.pick([
    { graph: true, field: 1, name: 'node' },
    { graph: true, field: 5, name: 'initializer' },
    { graph: true, field: 11, name: 'input' },
    { graph: false, field: 25, name: 'functions' },
    { graph: false, field: 8, name: 'opsetImport' },
  ]);
  // Six million entries is a 12 MB file, far under the 512 MB model limit.
  const k = rng.pick([1_000, 1_000, 100_000, 100_000, 1_000_000, 1_000_000, 2_000_000, 6_000_000]);
  const tag = varint((where.field << 3) | 2);
  const entries = new Uint8Array(k * (tag.length + 1));
  for (let i = 0; i < k; i++) entries.set(tag, i * (tag.length + 1)); // each followed by length 0
  const parts = where.graph ? [Uint8Array.of(0x3a, ...varint(entries.length)), entries] : [entries];
  return { bytes: new Uint8Array(Buffer.concat([encoded, ...parts])), applied: `empty ${where.name} ×${k}` };
}

function varint(v: number): number[] {
  const out: number[] = [];
  for (; v > 127; v = Math.floor(v / 128)) out.push((v & 127) | 128);
  out.push(v);
  return out;
}
