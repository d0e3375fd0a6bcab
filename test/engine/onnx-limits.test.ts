// Models that would stall or exhaust a worker in onnxruntime's session creation are refused by the check first,
// each with the limit it broke and how to raise it; the defaults still admit a ResNet-50-sized classifier.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_LIMITS, OnnxError, checkModel, loadModel, parseModel, saveModel } from '../../engine/onnx/model.js';
import { onnx, type GraphProto, type ModelProto, type NodeProto } from '../../engine/onnx/proto.js';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const GRAPH = onnx.AttributeProto.AttributeType.GRAPH;
const info = (name: string, dims: number[] = [4]) => ({
  name,
  type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});
const node = (opType: string, input: string[], output: string[], extra: Partial<NodeProto> = {}): NodeProto => ({
  opType,
  input,
  output,
  ...extra,
});
const model = (nodes: NodeProto[], extra: Partial<GraphProto> = {}, more: Partial<ModelProto> = {}): ModelProto => ({
  irVersion: 8,
  opsetImport: [{ domain: '', version: 17 }, ...(more.opsetImport ?? [])],
  graph: { name: 'g', node: nodes, input: [info('x')], output: [info('y')], ...extra },
  ...(more.functions ? { functions: more.functions } : {}),
});
const refuse = (m: ModelProto, message: string | RegExp, opts = {}) => {
  expect(() => checkModel(m, 'big.onnx', opts)).toThrow(OnnxError);
  expect(() => checkModel(m, 'big.onnx', opts)).toThrow(message);
};

describe('model limits', () => {
  test('100,000 unused nodes on one input (onnxruntime was still creating the session after 300 s)', async () => {
    const nodes = [node('Identity', ['x'], ['y'])];
    for (let i = 0; i < 100_000; i++) nodes.push(node('Relu', ['x'], [`u${i}`]));
    const dir = await mkdtemp(join(tmpdir(), 'onnx-limits-'));
    const file = join(dir, 'nodes.onnx');
    await writeFile(file, saveModel(model(nodes)));
    await expect(loadModel(file)).rejects.toThrow(
      `${file}: 100001 nodes (local functions expanded), over the limit of 5000 (maxNodes; raise it with --max-nodes or the policy)`,
    );
  });

  test('local functions that call each other ten times each expand to 10^5 nodes', () => {
    const fn = (k: number) => ({
      name: `F${k}`,
      domain: 'local',
      input: ['a'],
      output: ['b'],
      opsetImport: [{ domain: '', version: 17 }],
      node:
        k === 0
          ? [node('Relu', ['a'], ['b'])]
          : Array.from({ length: 10 }, (_, i) =>
              node(`F${k - 1}`, [i ? `t${i - 1}` : 'a'], [i === 9 ? 'b' : `t${i}`], { domain: 'local' }),
            ),
    });
    const m = model(
      [node('F5', ['x'], ['y'], { domain: 'local' })],
      {},
      {
        opsetImport: [{ domain: 'local', version: 1 }],
        functions: Array.from({ length: 6 }, (_, k) => fn(k)),
      },
    );
    refuse(m, 'big.onnx: 100000 nodes (local functions expanded), over the limit of 5000 (maxNodes');
  });

  test('a local function that calls itself', () => {
    const m = model(
      [node('F', ['x'], ['y'], { domain: 'local' })],
      {},
      {
        opsetImport: [{ domain: 'local', version: 1 }],
        functions: [
          {
            name: 'F',
            domain: 'local',
            input: ['a'],
            output: ['b'],
            node: [node('F', ['a'], ['b'], { domain: 'local' })],
          },
        ],
      },
    );
    refuse(m, 'big.onnx: a local function calls itself (directly or through others)');
  });

  test('If branches nested 10 deep', () => {
    let inner: GraphProto = { name: 'leaf', node: [node('Identity', ['x'], ['o'])], output: [info('o')] };
    for (let d = 0; d < 10; d++) {
      inner = {
        name: `level${d}`,
        node: [
          node('If', ['c'], ['o'], {
            name: `if${d}`,
            attribute: [
              { name: 'then_branch', type: GRAPH, g: inner },
              { name: 'else_branch', type: GRAPH, g: inner },
            ],
          }),
        ],
        output: [info('o')],
      };
    }
    const m = model(inner.node!.map((n) => ({ ...n, output: ['y'] })));
    refuse(
      m,
      /big\.onnx: graphs nested more than 8 deep \(graph then_branch of node if\d[^)]*\), over the limit of 8 \(maxGraphDepth/,
    );
  });

  test('a 2 GB sparse initializer with four stored values (onnxruntime expands it: 2.4 GB resident)', () => {
    const sparse = {
      values: { name: 'w', dataType: FLOAT, dims: [4], floatData: [1, 2, 3, 4] },
      indices: { name: 'w_idx', dataType: onnx.TensorProto.DataType.INT64, dims: [4], int64Data: [0, 1, 2, 3] },
      dims: [500_000_000],
    };
    const m = model([node('Identity', ['x'], ['y'])], { sparseInitializer: [sparse] });
    refuse(m, 'big.onnx: sparse initializer "w" expands to 500000000 elements (2.0 GB), over the 1.1 GB tensor limit');
    // Parsed from bytes as well.
    expect(() => parseModel(saveModel(m), 'big.onnx')).toThrow('expands to 500000000 elements');
  });

  test('100,000 tiny initializers (30 s of session creation)', () => {
    const initializer = Array.from({ length: 100_000 }, (_, i) => ({
      name: `w${i}`,
      dataType: FLOAT,
      dims: [1],
      floatData: [0],
    }));
    refuse(
      model([node('Identity', ['x'], ['y'])], { initializer }),
      'big.onnx: more than 5000 tensors, over the limit of 5000 (maxInitializers',
    );
  });

  test('tensors that together declare more than the total allowed', () => {
    const initializer = Array.from({ length: 3 }, (_, i) => ({
      name: `w${i}`,
      dataType: FLOAT,
      dims: [100],
      floatData: new Array<number>(100).fill(0),
    }));
    refuse(
      model([node('Identity', ['x'], ['y'])], { initializer }),
      /tensors up to initializer "w2" declare 0\.0 MB, over the limit of 0\.0 MB \(maxTotalTensorBytes/,
      {
        maxTotalTensorBytes: 1000,
      },
    );
  });

  test.each([
    ['STRING', onnx.TensorProto.DataType.STRING],
    ['UNDEFINED', onnx.TensorProto.DataType.UNDEFINED],
    ['COMPLEX64', onnx.TensorProto.DataType.COMPLEX64],
    ['an unknown number', 99],
  ])('an element type without a known size (%s) is refused before anything is allocated', (_name, dataType) => {
    const initializer = [{ name: 'w', dataType, dims: [1_000_000_000], rawData: new Uint8Array(4) }];
    refuse(
      model([node('Identity', ['x'], ['y'])], { initializer }),
      `initializer "w" has element type ${dataType}, which has no known size; refused`,
    );
  });

  test('250,000 empty nodes on the wire are refused before any is decoded (6 million took 1 GB to decode)', () => {
    // Empty nodes (GraphProto field 1, length 0: 0x0a 0x00) appended inside the model's one graph.
    const graphBytes = Buffer.from(onnx.GraphProto.encode(model([node('Identity', ['x'], ['y'])]).graph!).finish());
    const empty = Buffer.alloc(250_000 * 2);
    for (let i = 0; i < empty.length; i += 2) empty[i] = 0x0a;
    const g = Buffer.concat([graphBytes, empty]);
    const len: number[] = [];
    for (let n = g.length; ; n >>>= 7) {
      if (n < 128) {
        len.push(n);
        break;
      }
      len.push((n & 127) | 128);
    }
    const head = Buffer.from(saveModel({ ...model([]), graph: undefined }));
    const bytes = Buffer.concat([head, Buffer.from([0x3a, ...len]), g]);
    expect(() => parseModel(bytes, 'big.onnx')).toThrow(
      'big.onnx: ModelProto.graph: more than 200000 messages in the model (maxMessages)',
    );
  });

  test('every limit can be lowered (and raised) per call', () => {
    const m = model([node('Relu', ['x'], ['r']), node('Identity', ['r'], ['y'])]);
    expect(() => checkModel(m, 'm.onnx')).not.toThrow();
    refuse(m, 'over the limit of 1 (maxNodes; raise it with --max-nodes', { maxNodes: 1 });
  });

  test('the defaults admit a ResNet-50-sized classifier: 25.6M parameters, 161 tensors, 320 nodes', () => {
    const sizes = Array.from({ length: 160 }, () => 159_000);
    sizes.push(25_600_000 - sizes.reduce((a, b) => a + b, 0));
    const storage = new Uint8Array(25_600_000 * 4);
    let at = 0;
    const initializer = sizes.map((n, i) => {
      const t = { name: `w${i}`, dataType: FLOAT, dims: [n], rawData: storage.subarray(at, at + n * 4) };
      at += n * 4;
      return t;
    });
    const nodes: NodeProto[] = [];
    let prev = 'x';
    for (let i = 0; i < 319; i++) nodes.push(node('Relu', [prev], [(prev = `r${i}`)]));
    nodes.push(node('Identity', [prev], ['y']));
    const m = model(nodes, { initializer });
    expect(() => checkModel(m, 'resnet50.onnx')).not.toThrow();
    expect(MODEL_LIMITS.maxTotalTensorBytes).toBeGreaterThan(25_600_000 * 4 * 4);
  });
});
