// Model files are checked before onnxruntime sees them; hostile ones give clear errors.
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { differentiate } from '../../engine/autodiff/differentiate.js';
import { AutodiffError } from '../../engine/autodiff/types.js';
import { inspectModel } from '../../engine/inspect.js';
import { GraphBuilder } from '../../engine/onnx/builder.js';
import { OnnxError, loadModel, parseModel, saveModel } from '../../engine/onnx/model.js';
import { onnx, type ModelProto } from '../../engine/onnx/proto.js';
import { createSession, floatTensor } from '../../engine/runtime/session.js';

function smallModel(): ModelProto {
  const g = new GraphBuilder();
  const x = g.input('image', ['N', 1, 4, 4]);
  const c = g.op('Conv', [x, g.init('w', new Float32Array(2 * 9).fill(0.1), [2, 1, 3, 3])], { pads: [1, 1, 1, 1] });
  const f = g.op('Flatten', [g.op('Relu', [c])]);
  g.output(g.op('Gemm', [f, g.init('fc', new Float32Array(32 * 3).fill(0.01), [32, 3])], {}, ['logits']), ['N', 3]);
  return g.build();
}

async function tmp(name: string, bytes: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'onnx-'));
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe('reading models', () => {
  test('a model round-trips through bytes and runs in onnxruntime', async () => {
    const bytes = saveModel(smallModel());
    const model = await loadModel(await tmp('m.onnx', bytes));
    const out = await (
      await createSession(model)
    ).run({ image: floatTensor(new Float32Array(16).fill(1), [1, 1, 4, 4]) });
    expect(out.logits.dims).toEqual([1, 3]);
  });

  test('inspect lists inputs, outputs, ops and which lack a gradient rule', () => {
    const g = new GraphBuilder();
    const x = g.input('x', ['N', 4]);
    g.output(g.op('Erf', [g.op('Relu', [x])], {}, ['y']), ['N', 4]);
    const s = inspectModel(g.build());
    expect(s.inputs).toEqual([{ name: 'x', shape: ['N', 4] }]);
    expect(s.ops).toEqual([
      { op: 'Erf', count: 1, gradient: false },
      { op: 'Relu', count: 1, gradient: true },
    ]);
    expect(s.withoutGradient).toEqual(['Erf']);
    expect(inspectModel(smallModel()).parameters).toBe(18 + 96);
  });

  const hostile: [string, () => Uint8Array, RegExp][] = [
    [
      'truncated bytes',
      () => saveModel(smallModel()).subarray(0, 60),
      /m\.onnx: not an ONNX model: the protobuf does not decode/,
    ],
    ['random bytes', () => randomBytes(4096), /m\.onnx: not an ONNX model/],
    ['an empty file', () => new Uint8Array(), /m\.onnx: the file is empty/],
    [
      'external data (a path outside the folder)',
      () => {
        const m = smallModel();
        m.graph!.initializer![0] = {
          name: 'w',
          dataType: 1,
          dims: [2, 1, 3, 3],
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [{ key: 'location', value: '../../etc/passwd' }],
        };
        return saveModel(m);
      },
      /initializer "w" keeps its data in the external file "\.\.\/\.\.\/etc\/passwd"; external data is refused/,
    ],
    [
      'a tensor that declares 10 GB',
      () => {
        const m = smallModel();
        m.graph!.initializer![0] = { name: 'w', dataType: 1, dims: [50_000, 50_000], rawData: new Uint8Array(16) };
        return saveModel(m);
      },
      /initializer "w" declares 50000×50000 elements \(10\.0 GB\), over the 1\.1 GB tensor limit/,
    ],
    [
      'a tensor whose data disagrees with its dims',
      () => {
        const m = smallModel();
        m.graph!.initializer![0] = { name: 'w', dataType: 1, dims: [2, 1, 3, 3], rawData: new Uint8Array(12) };
        return saveModel(m);
      },
      /initializer "w" declares 2×1×3×3 elements but holds 12 bytes/,
    ],
    [
      'an opset outside the supported range',
      () => saveModel({ ...smallModel(), opsetImport: [{ domain: '', version: 7 }] }),
      /opset 7 is outside the supported range 13-21/,
    ],
    [
      'an op from an unknown domain',
      () => {
        const m = smallModel();
        m.graph!.node![0] = { ...m.graph!.node![0], domain: 'com.evil', opType: 'Backdoor', name: 'n0' };
        return saveModel(m);
      },
      /ops from unknown domains: com\.evil::Backdoor \(node n0\)/,
    ],
  ];
  test.each(hostile)('refuses %s with a clear error', async (_name, make, message) => {
    const path = await tmp('m.onnx', make());
    await expect(loadModel(path)).rejects.toThrow(OnnxError);
    await expect(loadModel(path)).rejects.toThrow(message);
  });

  test('a size limit applies before the file is read', async () => {
    const path = await tmp('m.onnx', saveModel(smallModel()));
    await expect(loadModel(path, { maxBytes: 100 })).rejects.toThrow(/m\.onnx: \d+ bytes, over the 100-byte limit/);
    expect(() => parseModel(new Uint8Array(10), 'x.onnx', { maxBytes: 5 })).toThrow(
      'x.onnx: the model is 0.0 MB, over the 0.0 MB limit (maxBytes)',
    );
  });

  test('the CLI inspects a model and exits non-zero on a bad one', async () => {
    const good = await tmp('m.onnx', saveModel(smallModel()));
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/secmlops.js', 'inspect', good]);
    expect(stdout).toContain('input  image [N, 1, 4, 4]');
    expect(stdout).toContain('every op has a gradient rule');
    const bad = await tmp('bad.onnx', randomBytes(100));
    await expect(promisify(execFile)(process.execPath, ['bin/secmlops.js', 'inspect', bad])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('bad.onnx: not an ONNX model'),
    });
  });
});

describe('differentiating', () => {
  test('an op without a gradient rule is named with its node', () => {
    const g = new GraphBuilder();
    const x = g.input('x', ['N', 4]);
    g.nodes.push({ opType: 'Erf', input: [x], output: ['e'], name: 'my_erf' });
    g.output(g.op('Relu', ['e']), ['N', 4]);
    expect(() => differentiate(g.build(), { wrt: ['x'] })).toThrow(AutodiffError);
    expect(() => differentiate(g.build(), { wrt: ['x'] })).toThrow(
      /^no gradient rule for Erf node "my_erf"; supported ops: Add, AveragePool/,
    );
  });

  test('a whole model written as raw protobuf (not through the builder) differentiates and runs', async () => {
    // The bytes a PyTorch exporter would write: Conv → Relu → Flatten → Gemm, weights as float_data.
    const raw = onnx.ModelProto.encode({
      irVersion: 7,
      producerName: 'handwritten',
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'raw',
        input: [
          {
            name: 'input',
            type: {
              tensorType: {
                elemType: 1,
                shape: { dim: [{ dimParam: 'batch' }, { dimValue: 1 }, { dimValue: 3 }, { dimValue: 3 }] },
              },
            },
          },
        ],
        output: [
          {
            name: 'out',
            type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 2 }] } } },
          },
        ],
        initializer: [
          {
            name: 'conv.weight',
            dataType: 1,
            dims: [2, 1, 2, 2],
            floatData: [0.5, -0.3, 0.2, 0.8, -0.6, 0.1, 0.4, -0.2],
          },
          {
            name: 'fc.weight',
            dataType: 1,
            dims: [2, 8],
            floatData: [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.1, 0.3, 0.2, -0.4, 0.6, 0.1, -0.5, 0.2],
          },
          { name: 'fc.bias', dataType: 1, dims: [2], floatData: [0.05, -0.05] },
        ],
        node: [
          {
            opType: 'Conv',
            input: ['input', 'conv.weight'],
            output: ['c'],
            name: 'conv',
            attribute: [{ name: 'kernel_shape', type: 7, ints: [2, 2] }],
          },
          { opType: 'Relu', input: ['c'], output: ['r'], name: 'relu' },
          {
            opType: 'Flatten',
            input: ['r'],
            output: ['f'],
            name: 'flatten',
            attribute: [{ name: 'axis', type: 2, i: 1 }],
          },
          {
            opType: 'Gemm',
            input: ['f', 'fc.weight', 'fc.bias'],
            output: ['out'],
            name: 'fc',
            attribute: [{ name: 'transB', type: 2, i: 1 }],
          },
        ],
      },
    }).finish();
    const model = parseModel(raw, 'raw.onnx');
    const grad = differentiate(model, { wrt: ['input', 'conv.weight', 'fc.weight'] });
    const session = await createSession(grad.model);
    // Chosen so no conv output sits on the ReLU kink at 0.
    const x = Float32Array.from([0.3, -0.7, 0.9, 0.2, 0.5, -0.4, 0.8, -0.1, 0.5]);
    const labels = new (await import('onnxruntime-node')).Tensor('int64', BigInt64Array.from([1n]), [1]);
    const out = await session.run({ input: floatTensor(x, [1, 1, 3, 3]), [grad.labels]: labels });
    // Finite differences on the input through the same session.
    const loss = async (d: Float32Array) =>
      (
        (await session.run({ input: floatTensor(d, [1, 1, 3, 3]), [grad.labels]: labels }))[grad.loss]
          .data as Float32Array
      )[0];
    const g = out[grad.grads.input].data as Float32Array;
    for (let i = 0; i < 9; i++) {
      const p = x.slice();
      const m = x.slice();
      p[i] += 1e-3;
      m[i] -= 1e-3;
      const numeric = ((await loss(p)) - (await loss(m))) / 2e-3;
      expect(Math.abs(numeric - g[i])).toBeLessThan(2e-3 + 2e-2 * Math.abs(numeric));
    }
    expect(out[grad.grads['conv.weight']].dims).toEqual([2, 1, 2, 2]);
  });
});
