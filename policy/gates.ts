import type { Gate } from './types.js';

/** Metrics the data stage measures per split; gates may name them. */
export const DATA_METRIC_PATTERN = /^data\.([A-Za-z0-9_-]+)\.(images|min_class_fraction|max_class_fraction|pixel_mean|pixel_std)$/;
/** Metrics the train stage records: the last epoch's loss and accuracy, the best robust validation accuracy. */
export const TRAIN_METRIC_PATTERN = /^train\.(loss|accuracy|robust_validation|epochs)$/;
/**
 * Metrics the evaluate stage measures: evaluate.clean_accuracy, evaluate.class.<k>.miss_rate, and per attack
 * evaluate.<id>.{robust_accuracy,attack_success_rate,median_linf,median_l2} and evaluate.<id>.class.<k>.miss_rate.
 */
export const EVALUATE_METRIC_PATTERN = /^evaluate\.(?:clean_accuracy|class\.(\d+)\.miss_rate|([A-Za-z0-9_-]+)\.(?:robust_accuracy|attack_success_rate|median_linf|median_l2|class\.(\d+)\.miss_rate))$/;

export interface GateResult extends Gate {
  /** Undefined when no stage measured the metric: such a gate fails closed. */
  measured?: number;
  passed: boolean;
}

export function evaluateGate(gate: Gate, metrics: Record<string, number>): GateResult {
  const measured = metrics[gate.metric];
  if (measured === undefined || Number.isNaN(measured)) return { ...gate, passed: false };
  const v = gate.value;
  const passed =
    gate.op === '>=' ? measured >= v : gate.op === '>' ? measured > v : gate.op === '<=' ? measured <= v : gate.op === '<' ? measured < v : measured === v;
  return { ...gate, measured, passed };
}

export function describeGate(g: GateResult): string {
  const seen = g.measured === undefined ? 'not measured' : `measured ${formatMetric(g.measured)}`;
  return `${g.id}: ${g.metric} ${g.op} ${g.value}, ${seen} (${g.passed ? 'pass' : 'FAIL'})`;
}

/** A measured value as gate messages show it. */
export function formatMetric(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(4);
}
