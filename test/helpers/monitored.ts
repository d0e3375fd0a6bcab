// Monitored releases for tests: two releases of nearly the same model under one policy, each with its monitor.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../engine/onnx/model.js';
import { stageWorkflowId } from '../../workflows/messages.js';
import type { PipelineResult } from '../../workflows/messages.js';
import { testPolicy, type Fixture, type PolicyOptions } from './fixture.js';
import { result, startPipeline, uniqueId, type Stack } from './temporal.js';

export const WINDOW_S = 3;

const MONITOR = `monitor:
  window: ${WINDOW_S}s
  minInputs: 50
  quietWindows: 6
  drift: { psi: 0.25, ksPValue: 0.001 }
  windowsPerRun: 4
evaluate:
  limit: 300
  safetyCritical: [6]
  attacks:
    - { id: fgsm, attack: fgsm, eps: 0.01 }`;

/** The example model, or a copy with one output bias nudged: another model that behaves the same. */
export async function exampleModel(nudge: number): Promise<Uint8Array> {
  const m = await loadModel('examples/fashion-mnist/model.onnx');
  const bias = m.graph!.initializer!.find((t) => t.name === 'fc.bias')!;
  const raw = Uint8Array.from(bias.rawData!);
  new DataView(raw.buffer).setFloat32(0, new DataView(raw.buffer).getFloat32(0, true) + nudge, true);
  bias.rawData = raw;
  return saveModel(m);
}

export interface MonitoredReleases {
  policy: Awaited<ReturnType<typeof testPolicy>>;
  /** The earlier release (model A) and the later one (model B), each passed with its monitor running. */
  a: { id: string; result: PipelineResult; attestation: string };
  b: { id: string; result: PipelineResult; attestation: string };
  monitors: string[];
}

/** Releases model A, then model B, through evaluate → release → monitor under one policy. */
export async function monitoredReleases(
  stack: Stack,
  fx: Fixture,
  opts: { extra?: string } & Pick<PolicyOptions, 'consoleChannel'> = {},
): Promise<MonitoredReleases> {
  const modelPath = join(fx.dir, 'served.onnx');
  const policy = await testPolicy(fx, {
    stages: '  - name: evaluate\n    approval: false\n  - name: release\n    approval: false\n  - monitor',
    model: modelPath,
    extra: `${MONITOR}\n${opts.extra ?? ''}`,
    ...(opts.consoleChannel ? { consoleChannel: true } : {}),
  });
  const monitors: string[] = [];
  const release = async (name: string, nudge: number) => {
    await writeFile(modelPath, await exampleModel(nudge));
    const id = uniqueId(name);
    const r = await result(await startPipeline(stack.client, policy, id));
    if (r.state !== 'passed') throw new Error(`the pipeline ${r.state}: ${r.reason}`);
    monitors.push(stageWorkflowId(id, 'monitor'));
    return { id, result: r, attestation: r.stages[1].artifacts.attestation };
  };
  const a = await release('monitor-a', 0);
  const b = await release('monitor-b', 0.01);
  return { policy, a, b, monitors };
}
