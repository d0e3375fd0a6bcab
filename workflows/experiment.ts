// `secmlops experiment` as durable workflows: the grid runs one child workflow per cell, one after another (the
// engine work of one cell fills the machine), and a cell's model comes from a cache shared by the cells that train
// the same way. A crash anywhere resumes at the cell that was running.
import { executeChild, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { GpuActivities } from '../activities/index.js';
import type { ExperimentModel } from '../activities/experiment.js';
import type { ExperimentEvalResult } from '../engine/jobs/protocol.js';
import type { AttackName, DefenseName, ExperimentSpec } from '../experiment/spec.js';
import { GPU_TASK_QUEUE } from './messages.js';
import { defineQuery } from '@temporalio/workflow';

export interface CellInput {
  spec: ExperimentSpec;
  defense: DefenseName;
  attack: AttackName;
}

export interface CellResult extends ExperimentEvalResult {
  defense: DefenseName;
  attack: AttackName;
  model: ExperimentModel;
}

export interface ExperimentStatus {
  cells: number;
  done: CellResult[];
  running?: { defense: DefenseName; attack: AttackName };
}

export const experimentStatusQuery = defineQuery<ExperimentStatus>('experimentStatus');

const gpu = proxyActivities<GpuActivities>({
  taskQueue: GPU_TASK_QUEUE,
  startToCloseTimeout: '12h',
  heartbeatTimeout: '5m',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['InvalidTraining', 'InvalidEvaluation'] },
});

export async function experimentCell(input: CellInput): Promise<CellResult> {
  const poisoned = input.attack.startsWith('poisoning');
  const model = await gpu.experimentModel({ spec: input.spec, defense: input.defense, poisoned });
  const result = await gpu.experimentEvaluate({
    spec: input.spec,
    attack: input.attack,
    model: { ref: model.ref, sha256: model.sha256 },
    guard: input.defense === 'full',
  });
  return { ...result, defense: input.defense, attack: input.attack, model };
}

export async function experimentGrid(input: { spec: ExperimentSpec }): Promise<CellResult[]> {
  const { spec } = input;
  const status: ExperimentStatus = { cells: spec.defenses.length * spec.attacks.length, done: [] };
  setHandler(experimentStatusQuery, () => status);
  // Attacks outer: the cells of one training (clean or poisoned data) follow each other, while its model is cached.
  for (const attack of spec.attacks)
    for (const defense of spec.defenses) {
      status.running = { defense, attack };
      const r = await executeChild(experimentCell, {
        workflowId: `${workflowInfo().workflowId}/${defense}/${attack}`,
        args: [{ spec, defense, attack }],
      });
      status.done.push(r);
    }
  status.running = undefined;
  return status.done;
}
