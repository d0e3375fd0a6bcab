// `secmlops experiment` as durable workflows: the grid runs one child workflow per cell, one after another (the
// engine work of one cell fills the machine), and a cell's model comes from a cache shared by the cells that train
// the same way. A crash anywhere resumes at the cell that was running.
import { executeChild, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
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

export interface GridInput {
  spec: ExperimentSpec;
  /** Cells measured by an earlier run of the same spec (`secmlops experiment --resume`): not run again. */
  skip?: Array<{ defense: DefenseName; attack: AttackName }>;
}

/** The grid's cells in the order they run. */
export function cellOrder(spec: ExperimentSpec, byModel: boolean): Array<{ defense: DefenseName; attack: AttackName }> {
  const cells: Array<{ defense: DefenseName; attack: AttackName }> = [];
  if (!byModel) {
    for (const attack of spec.attacks) for (const defense of spec.defenses) cells.push({ defense, attack });
    return cells;
  }
  // One model's cells back to back: a run stopped between models (a session's end, a machine reclaimed) loses at
  // most the model in training, and `--resume` carries the finished cells. The models without adversarial training
  // (minutes each) come first, clean data before poisoned, then the adversarially trained ones (the better part of
  // an hour each on the wide CNN). On clean data the full policy deploys the ES+AT model (with its margin and
  // guard), so its cells follow ES+AT's.
  const pairFull = spec.defenses.includes('es-at') && spec.defenses.includes('full');
  const adversarial = (d: DefenseName) => d === 'es-at' || d === 'full';
  for (const slow of [false, true])
    for (const poisoned of [false, true])
      for (const defense of spec.defenses) {
        if (adversarial(defense) !== slow || (defense === 'full' && pairFull && !poisoned)) continue;
        const models: DefenseName[] = defense === 'es-at' && pairFull && !poisoned ? ['es-at', 'full'] : [defense];
        for (const d of models)
          for (const attack of spec.attacks)
            if (attack.startsWith('poisoning') === poisoned) cells.push({ defense: d, attack });
      }
  return cells;
}

export async function experimentGrid(input: GridInput): Promise<CellResult[]> {
  const { spec } = input;
  const skip = new Set((input.skip ?? []).map((c) => `${c.defense}/${c.attack}`));
  // Runs started before the model order (and the skip list) replay in the attacks-outer order they began with, every
  // cell run: a worker that predates them ignored `skip`.
  const byModel = patched('experiment-cells-by-model');
  const order = cellOrder(spec, byModel).filter((c) => !byModel || !skip.has(`${c.defense}/${c.attack}`));
  const status: ExperimentStatus = { cells: order.length, done: [] };
  setHandler(experimentStatusQuery, () => status);
  for (const { defense, attack } of order) {
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
