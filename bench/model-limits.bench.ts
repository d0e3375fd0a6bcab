// The worst models the default limits admit, and how long they take to check and to become an onnxruntime session:
// the limits are there to keep that to seconds. Each shape sits right at a default cap. Appends to bench/RESULTS.md.
// Run with `node --import tsx bench/model-limits.bench.ts` (part of `npm run bench`).
import { appendFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { MODEL_LIMITS, checkModel, parseModel, saveModel } from '../engine/onnx/model.js';
import { onnx, type GraphProto, type ModelProto, type NodeProto } from '../engine/onnx/proto.js';
import { createSession } from '../engine/runtime/session.js';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const info = (name: string) => ({
  name,
  type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } },
});
const node = (opType: string, input: string[], output: string[], extra: Partial<NodeProto> = {}): NodeProto => ({
  opType,
  input,
  output,
  ...extra,
});
const model = (nodes: NodeProto[], extra: Partial<GraphProto> = {}): ModelProto => ({
  irVersion: 8,
  opsetImport: [{ domain: '', version: 17 }],
  graph: { name: 'g', node: nodes, input: [info('x')], output: [info('y')], ...extra },
});
const N = MODEL_LIMITS.maxNodes - 1;
const tensor = (name: string) => ({ name, dataType: FLOAT, dims: [1, 4], floatData: [0, 0, 0, 0] });

const shapes: [string, () => ModelProto][] = [
  [
    `${N} unused nodes reading one input (superlinear in onnxruntime: 20,000 took 12 s)`,
    () =>
      model([node('Identity', ['x'], ['y']), ...Array.from({ length: N }, (_, i) => node('Relu', ['x'], [`u${i}`]))]),
  ],
  [
    `a chain of ${N} Adds, each with its own initializer`,
    () => {
      const nodes = Array.from({ length: N }, (_, i) => node('Add', [i ? `a${i - 1}` : 'x', `w${i}`], [`a${i}`]));
      nodes.push(node('Identity', [`a${N - 1}`], ['y']));
      return model(nodes, { initializer: Array.from({ length: N }, (_, i) => tensor(`w${i}`)) });
    },
  ],
  [
    `${MODEL_LIMITS.maxInitializers} unused initializers`,
    () =>
      model([node('Identity', ['x'], ['y'])], {
        initializer: Array.from({ length: MODEL_LIMITS.maxInitializers }, (_, i) => tensor(`w${i}`)),
      }),
  ],
  [
    `If branches nested ${MODEL_LIMITS.maxGraphDepth} deep, ${2 ** MODEL_LIMITS.maxGraphDepth} leaves`,
    () => {
      // Both branches hold the same subgraph, so each level doubles it; the If nodes count too.
      const per = Math.floor((N - 2 ** MODEL_LIMITS.maxGraphDepth) / 2 ** MODEL_LIMITS.maxGraphDepth);
      let g: GraphProto = {
        name: 'leaf',
        node: [
          node('Identity', ['x'], ['o']),
          ...Array.from({ length: per - 1 }, (_, i) => node('Relu', ['x'], [`l${i}`])),
        ],
        output: [info('o')],
      };
      for (let d = 0; d < MODEL_LIMITS.maxGraphDepth; d++) {
        const branch = (k: string) => ({ name: `${k}_branch`, type: onnx.AttributeProto.AttributeType.GRAPH, g });
        g = {
          name: `level${d}`,
          node: [node('If', ['c'], ['o'], { attribute: [branch('then'), branch('else')] })],
          output: [info('o')],
        };
      }
      const m = model(g.node!.map((n) => ({ ...n, output: ['y'] })));
      m.graph!.input!.push({
        name: 'c',
        type: { tensorType: { elemType: onnx.TensorProto.DataType.BOOL, shape: {} } },
      });
      return m;
    },
  ],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: string[][] = [];
for (const [label, make] of shapes) {
  const bytes = saveModel(make());
  const check: number[] = [];
  const session: number[] = [];
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    const m = parseModel(bytes, 'bench.onnx');
    checkModel(m, 'bench.onnx');
    check.push(performance.now() - t);
    t = performance.now();
    await (await createSession(m)).release();
    session.push(performance.now() - t);
  }
  rows.push([
    label,
    `${(bytes.length / 1e6).toFixed(2)} MB`,
    `${median(check).toFixed(0)} ms`,
    `${(median(session) / 1000).toFixed(2)} s`,
  ]);
  console.log(rows.at(-1)!.join(' | '));
}
const header = ['model at the default caps', 'file', 'parse + check (median of 3)', 'session creation (median of 3)'];
const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}, onnxruntime-node 1.30.0`;
console.log(`\n${machine}\n\n${table}\n`);
await appendFile(
  'bench/RESULTS.md',
  `\n## Model load at the default limits — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}. Caps: ${MODEL_LIMITS.maxNodes} nodes, ${MODEL_LIMITS.maxInitializers} tensors, depth ${MODEL_LIMITS.maxGraphDepth}. For scale, before the caps: 20,000 unused nodes on one input took 12.2 s to become a session and 100,000 did not finish in 300 s.\n\n${table}\n`,
);
