// Models that try to read the worker's files or stall it. For each place a tensor can sit, the attack is first run
// against onnxruntime itself with our check bypassed (in a child process whose working directory holds a "secret"),
// to show the place is really read (or really ignored); then the check must refuse the same bytes, naming it.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OnnxError, parseModel, saveModel } from '../../engine/onnx/model.js';
import { onnx, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../../engine/onnx/proto.js';

const run = promisify(execFile);
const ORT = createRequire(import.meta.url).resolve('onnxruntime-node');
const SECRET = [1.5, 2.5, 3.5, 4.5];
const FLOAT = onnx.TensorProto.DataType.FLOAT;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-onnx-hostile-'));
  await writeFile(join(dir, 'secret.bin'), Buffer.from(new Float32Array(SECRET).buffer));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

const info = (name: string, elem = FLOAT, dims: number[] = [4]) => ({
  name,
  type: { tensorType: { elemType: elem, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});
const external = (name: string, location = 'secret.bin'): TensorProto => ({
  name,
  dataType: FLOAT,
  dims: [4],
  dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
  externalData: [
    { key: 'location', value: location },
    { key: 'length', value: '16' },
  ],
});
const node = (opType: string, input: string[], output: string[], extra: Partial<NodeProto> = {}): NodeProto => ({
  opType,
  input,
  output,
  name: `${opType.toLowerCase()}_${output[0]}`,
  ...extra,
});
const graph = (nodes: NodeProto[], extra: Partial<GraphProto> = {}, inputs = [info('x')]): GraphProto => ({
  name: 'g',
  node: nodes,
  input: inputs,
  output: [info('y')],
  ...extra,
});
const model = (g: GraphProto, extra: Partial<ModelProto> = {}): ModelProto => ({
  irVersion: 8,
  opsetImport: [{ domain: '', version: 17 }, ...(extra.opsetImport ?? [])],
  graph: g,
  ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'opsetImport')),
});
const branch = (inner: Partial<GraphProto>): GraphProto => ({ name: 'b', output: [info('o')], node: [], ...inner });
const constant = (output: string, t: TensorProto): NodeProto =>
  node('Constant', [], [output], { attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t }] });
const ifNode = (then: GraphProto): NodeProto =>
  node('If', ['c'], ['t'], {
    attribute: [
      { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: then },
      { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: then },
    ],
  });
const withCond = [info('x'), info('c', onnx.TensorProto.DataType.BOOL, [])];
const sparse = (name: string) => ({
  values: external(name),
  indices: { name: `${name}_idx`, dataType: onnx.TensorProto.DataType.INT64, dims: [4], int64Data: [0, 1, 2, 3] },
  dims: [4],
});

/** Every place a tensor can sit, as a model whose output y is x plus that tensor (or ignores it). */
const LOCATIONS: [string, 'leaks' | 'ignored', () => ModelProto, RegExp][] = [
  [
    'a graph initializer',
    'leaks',
    () => model(graph([node('Add', ['x', 'w'], ['y'])], { initializer: [external('w')] })),
    /initializer "w" keeps its data in the external file "secret\.bin"/,
  ],
  [
    'an initializer of an If branch',
    'leaks',
    () =>
      model(
        graph(
          [
            ifNode(branch({ initializer: [external('w')], node: [node('Identity', ['w'], ['o'])] })),
            node('Add', ['x', 't'], ['y']),
          ],
          {},
          withCond,
        ),
      ),
    /initializer "w" in graph then_branch of node if_t keeps its data in the external file/,
  ],
  [
    'a Constant value',
    'leaks',
    () => model(graph([constant('w', external('v')), node('Add', ['x', 'w'], ['y'])])),
    /attribute value of node constant_w keeps its data in the external file/,
  ],
  [
    'a Constant value inside an If branch',
    'leaks',
    () =>
      model(
        graph([ifNode(branch({ node: [constant('o', external('v'))] })), node('Add', ['x', 't'], ['y'])], {}, withCond),
      ),
    /attribute value of node constant_o in graph then_branch of node if_t keeps its data in the external file/,
  ],
  [
    'a sparse initializer',
    'leaks',
    () => model(graph([node('Add', ['x', 'w'], ['y'])], { sparseInitializer: [sparse('w')] })),
    /sparse initializer "w" \(values\) keeps its data in the external file/,
  ],
  [
    'a sparse Constant value',
    'leaks',
    () =>
      model(
        graph([
          node('Constant', [], ['w'], {
            attribute: [
              {
                name: 'sparse_value',
                type: onnx.AttributeProto.AttributeType.SPARSE_TENSOR,
                sparseTensor: sparse('v'),
              },
            ],
          }),
          node('Add', ['x', 'w'], ['y']),
        ]),
      ),
    /attribute sparse_value of node constant_w \(values\) keeps its data in the external file/,
  ],
  [
    'a Constant inside a local function',
    'leaks',
    () =>
      model(graph([node('F', ['x'], ['y'], { domain: 'local' })]), {
        opsetImport: [{ domain: 'local', version: 1 }],
        functions: [
          {
            name: 'F',
            domain: 'local',
            input: ['a'],
            output: ['b'],
            opsetImport: [{ domain: '', version: 17 }],
            node: [constant('k', external('v')), node('Add', ['a', 'k'], ['b'])],
          },
        ],
      }),
    /attribute value of node constant_k in function local\.F keeps its data in the external file/,
  ],
  [
    'a training_info initialization graph',
    'ignored',
    () =>
      model(graph([node('Identity', ['x'], ['y'])]), {
        trainingInfo: [
          { initialization: branch({ initializer: [external('w')], node: [node('Identity', ['w'], ['o'])] }) },
        ],
      }),
    /initializer "w" in training_info\[0\] initialization keeps its data in the external file/,
  ],
  [
    'a training_info algorithm graph',
    'ignored',
    () =>
      model(graph([node('Identity', ['x'], ['y'])]), {
        trainingInfo: [{ algorithm: branch({ initializer: [external('w')], node: [node('Identity', ['w'], ['o'])] }) }],
      }),
    /initializer "w" in training_info\[0\] algorithm keeps its data in the external file/,
  ],
];

/** onnxruntime on the raw bytes, no check, working directory `dir`: what y comes out as, or the error. */
async function bypassed(bytes: Uint8Array, name: string): Promise<{ y?: number[]; error?: string }> {
  const file = join(dir, `${name}.onnx`);
  await writeFile(file, bytes);
  const script = `
    const ort = require(${JSON.stringify(ORT)});
    const bytes = require('node:fs').readFileSync(${JSON.stringify(file)});
    (async () => {
      try {
        // Without graph optimizations onnxruntime reads external data wherever it finds it.
        const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 4 });
        const feeds = { x: new ort.Tensor('float32', new Float32Array(4), [4]) };
        if (s.inputNames.includes('c')) feeds.c = new ort.Tensor('bool', [true], []);
        const r = await s.run(feeds);
        console.log(JSON.stringify({ y: Array.from(r.y.data) }));
      } catch (e) {
        console.log(JSON.stringify({ error: String(e.message) }));
      }
    })();`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: dir, timeout: 30_000 });
  return JSON.parse(stdout) as { y?: number[]; error?: string };
}

describe('external data, wherever the tensor sits', () => {
  test.each(LOCATIONS)(
    '%s: onnxruntime alone %s; the check refuses it',
    async (name, expected, make, message) => {
      const bytes = saveModel(make());
      const alone = await bypassed(bytes, name.replace(/\W+/g, '-'));
      if (expected === 'leaks') {
        // The secret's bytes came back as weights: this place is read.
        expect(alone).toEqual({ y: SECRET });
      } else {
        // Ignored: the model runs and the secret is not in its output, and a missing file is not even looked for.
        expect(alone.y).toEqual([0, 0, 0, 0]);
        const m = make();
        const missing = JSON.stringify(m).replaceAll('secret.bin', 'no-such-file.bin');
        expect(
          await bypassed(saveModel(JSON.parse(missing) as ModelProto), `${name}-missing`.replace(/\W+/g, '-')),
        ).toEqual({
          y: [0, 0, 0, 0],
        });
      }
      expect(() => parseModel(bytes, 'evil.onnx')).toThrow(OnnxError);
      expect(() => parseModel(bytes, 'evil.onnx')).toThrow(message);
    },
    60_000,
  );

  test('fields this decoder does not know are refused before decoding (a newer onnxruntime might read them)', () => {
    const clean = saveModel(model(graph([node('Identity', ['x'], ['y'])])));
    // Field 99, length-delimited, holding an external-data pointer's text. Tag (99 << 3) | 2 = 794: 0x9a 0x06.
    const payload = Buffer.from('location secret.bin');
    const bytes = Buffer.concat([clean, Buffer.from([0x9a, 0x06, payload.length]), payload]);
    expect(() => parseModel(bytes, 'm.onnx')).toThrow(
      'm.onnx: not an ONNX model: the protobuf does not decode (ModelProto: field 99 is not part of ModelProto',
    );
  });

  test('a second graph field is refused: onnxruntime merges both, the decoder keeps the last', () => {
    const real = model(graph([node('Identity', ['x'], ['y'])]));
    // A graph with a backdoor output, written before the real one.
    const hidden = onnx.GraphProto.encode(
      graph([node('Neg', ['x'], ['backdoor'])], { output: [info('backdoor')] }),
    ).finish();
    const prefix = Buffer.concat([Buffer.from([(7 << 3) | 2]), varint(hidden.length), hidden]);
    const bytes = Buffer.concat([prefix, saveModel(real)]);
    expect(() => parseModel(bytes, 'm.onnx')).toThrow(
      'm.onnx: ModelProto: graph appears twice; onnxruntime would merge both and run a model other than the one checked',
    );
  });

  test('a second ai.onnx opset import is refused: the check reads the first, onnxruntime the last', () => {
    const m = model(graph([node('Identity', ['x'], ['y'])]), { opsetImport: [{ domain: '', version: 9 }] });
    expect(() => parseModel(saveModel(m), 'm.onnx')).toThrow('m.onnx: the model imports the ai.onnx opset twice');
  });
});
