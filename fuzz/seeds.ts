// Valid inputs the mutators start from: each parser accepts every seed, so a refusal is caused by a mutation.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { GraphBuilder, tensor } from '../engine/onnx/builder.js';
import { saveModel } from '../engine/onnx/model.js';
import { AttributeType, DataType, type ModelProto } from '../engine/onnx/proto.js';
import { Rng } from '../engine/runtime/rng.js';
import { initWeights, smallCnn, deployableModel } from '../engine/train/zoo.js';
import { rawIdx, type IdxSpec } from './idx-mutators.js';

/** RFC 8032's first test key: a valid Ed25519 public key, for policies that pin one. */
export const VALID_KEY = '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';

/** A two-op model: x [N, 4] → Gemm → Relu → y [N, 3]. */
function tinyModel(): ModelProto {
  const g = new GraphBuilder();
  const x = g.input('x', ['N', 4]);
  const w = g.init(
    'w',
    Float32Array.from({ length: 12 }, (_, i) => i / 12),
    [4, 3],
  );
  const b = g.init('b', new Float32Array(3), [3]);
  g.output(g.op('Relu', [g.op('Gemm', [x, w, b])], {}, ['y']), ['N', 3]);
  return g.build({ name: 'tiny' });
}

/**
 * A valid model using every place a tensor can sit: an If whose branches hold an initializer and a Constant, a
 * sparse initializer, a local function, and a training_info graph. Mutations starting here reach those locations
 * without having to create them first.
 */
function richModel(): ModelProto {
  const g = new GraphBuilder();
  const x = g.input('x', ['N', 4]);
  const cond = g.input('cond', [], DataType.BOOL);
  const branch = (name: string, value: number) => ({
    name,
    node: [
      {
        opType: 'Constant',
        output: [`${name}_c`],
        attribute: [{ name: 'value', type: AttributeType.TENSOR, t: tensor(`${name}_t`, Float32Array.of(value), [1]) }],
      },
      { opType: 'Add', input: [x, `${name}_w`], output: [`${name}_out`] },
      { opType: 'Add', input: [`${name}_out`, `${name}_c`], output: [`${name}_y`] },
    ],
    initializer: [tensor(`${name}_w`, Float32Array.of(1, 2, 3, 4), [4])],
    output: [{ name: `${name}_y` }],
  });
  const [ify] = g.opN('If', [cond], {}, 1);
  g.nodes[g.nodes.length - 1].attribute = [
    { name: 'then_branch', type: AttributeType.GRAPH, g: branch('then', 1) },
    { name: 'else_branch', type: AttributeType.GRAPH, g: branch('else', 2) },
  ];
  g.nodes.push({ opType: 'Double', domain: 'fz', input: [ify], output: ['y'] });
  g.output('y', ['N', 4]);
  const model = g.build({ name: 'rich' });
  model.opsetImport!.push({ domain: 'fz', version: 1 });
  model.functions = [
    {
      name: 'Double',
      domain: 'fz',
      input: ['a'],
      output: ['b'],
      node: [{ opType: 'Add', input: ['a', 'a'], output: ['b'] }],
      opsetImport: [{ domain: '', version: 17 }],
    },
  ];
  model.graph!.sparseInitializer = [
    {
      values: tensor('sparse', Float32Array.of(5, 6), [2]),
      indices: tensor('sparse_i', BigInt64Array.of(1n, 3n), [2]),
      dims: [4],
    },
  ];
  model.trainingInfo = [
    {
      initialization: {
        name: 'init',
        node: [{ opType: 'Identity', input: ['seed_w'], output: ['seed_out'] }],
        initializer: [tensor('seed_w', Float32Array.of(0.5), [1])],
        output: [{ name: 'seed_out' }],
      },
    },
  ];
  return model;
}

/** Encoded ONNX seeds; the small CNN is the architecture pipelines train and `attack` loads. */
export function onnxSeeds(): Uint8Array[] {
  const cnn = deployableModel(smallCnn, initWeights(smallCnn, new Rng(1)));
  // Copied out of protobufjs's Buffers, which may share Node's pool with other allocations.
  return [cnn, tinyModel(), richModel()].map((m) => new Uint8Array(saveModel(m)));
}

/** Small valid IDX files: images (count×rows×cols) with their labels, raw or gzip. */
export function idxSeedSpecs(rng = new Rng(7)): IdxSpec[] {
  const bytes = (n: number, max = 256) => Uint8Array.from({ length: n }, () => rng.int(max));
  const spec = (dims: number[], payload: Uint8Array, gzip: IdxSpec['gzip']): IdxSpec => ({
    magic: [0, 0],
    type: 0x08,
    rank: dims.length,
    dims,
    payload,
    zeros: 0,
    gzip,
  });
  return [
    spec([3, 4, 4], bytes(48), 'none'),
    spec([3, 4, 4], bytes(48), 'single'),
    spec([3], bytes(3, 10), 'none'),
    spec([3], bytes(3, 10), 'single'),
    spec([2, 2, 3, 3], bytes(36), 'single'),
  ];
}

/** An image/label pair in the file names `attack --data` reads, `count` 28×28 images. */
export function idxDataset(count: number, rng = new Rng(11)): { images: Uint8Array; labels: Uint8Array } {
  const images = rawIdx({
    magic: [0, 0],
    type: 0x08,
    rank: 3,
    dims: [count, 28, 28],
    payload: Uint8Array.from({ length: count * 784 }, () => rng.int(256)),
    zeros: 0,
    gzip: 'none',
  });
  const labels = rawIdx({
    magic: [0, 0],
    type: 0x08,
    rank: 1,
    dims: [count],
    payload: Uint8Array.from({ length: count }, () => rng.int(10)),
    zeros: 0,
    gzip: 'none',
  });
  return { images: gzipSync(images), labels: gzipSync(labels) };
}

/** The policy of parse.test.ts: people, roles, a plan approval with escalation, an inline channel key. */
const MINIMAL = `version: 1
name: demo
people:
  alice: { github: alice-sec }
  omar: { github: omar-owner }
  carol: { github: carol }
roles:
  R3: { members: [alice] }
  R5: { members: [carol] }
  R7: { members: [omar, carol] }
  R8: { members: [carol] }
stages:
  - name: plan
    approval: { roles: [R3], timeout: 1h, escalation: R8, deadline: 2d }
  - release
channels:
  cli: { publicKey: ${VALID_KEY} }
`;

/** A dataset, a train and an evaluate stage with gates, quorum rules and notifications (semantics.test.ts style). */
const PIPELINE = `version: 1
name: full
people: { dana: { slack: U0DANA001 }, mia: { console: mia }, omar: {}, carol: {} }
roles:
  R1: { members: [dana] }
  R2: { members: [mia, dana] }
  R5: { members: [carol] }
  R7: { members: [omar] }
stages:
  - name: data
    approval: { roles: [R1, R2], quorum: 2, everyRole: true, timeout: 4h, escalation: R5, deadline: 3d }
  - { name: train, approval: false }
  - { name: evaluate, approval: false }
  - name: release
    approval: { roles: [R7, R5] }
artifacts:
  dataset:
    root: /data
    classes: 10
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { train: { images: i.gz, labels: l.gz }, test: { images: i.gz, labels: l.gz } }
train: { split: train, arch: mlp, epochs: 1, defense: { kind: fgsm-rs, eps: 0.1 } }
evaluate:
  split: test
  limit: 10
  attacks: [{ id: f, attack: fgsm, eps: 0.1 }, { id: p, attack: pgd, eps: 0.1, steps: 5 }]
gates:
  - { id: size, metric: data.train.images, op: '>=', value: 1 }
  - { id: robust, metric: evaluate.p.robust_accuracy, op: '>=', value: 0.5 }
notifications: { slack: { channel: C0SECMLOPS } }
release: { publicKey: ${VALID_KEY} }
`;

export const EXAMPLE_POLICY = fileURLToPath(new URL('../examples/fashion-mnist/secmlops.yaml', import.meta.url));

/** Policy seeds as text; the example's key files are served by the caller's readKeyFile. */
export function policySeeds(): string[] {
  return [MINIMAL, PIPELINE, readFileSync(EXAMPLE_POLICY, 'utf8')];
}
