import type { Gate } from './types.js';

/** Metrics the data stage measures per split; gates may name them. */
export const DATA_METRIC_PATTERN =
  /^data\.([A-Za-z0-9_-]+)\.(images|min_class_fraction|max_class_fraction|pixel_mean|pixel_std)$/;
/** The data stage's poisoning detection: images flagged (and removed), their share, per class. */
export const POISON_METRIC_PATTERN = /^data\.poison\.(?:flagged|flagged_fraction|class\.(\d+)\.flagged)$/;
/** The evaluate stage's backdoor measurement (evaluate.backdoor). */
export const BACKDOOR_METRIC_PATTERN = /^evaluate\.backdoor\.(?:success_rate|baseline_rate)$/;
/** The evaluate stage's membership inference (evaluate.privacy). */
export const PRIVACY_METRIC_PATTERN = /^evaluate\.privacy\.(?:mia_auc|mia_advantage)$/;
/** Metrics the train stage records: the last epoch's loss and accuracy, the best robust validation accuracy. */
export const TRAIN_METRIC_PATTERN = /^train\.(loss|accuracy|robust_validation|epochs|privacy\.epsilon|privacy\.delta)$/;
/**
 * Metrics the evaluate stage measures: evaluate.clean_accuracy, evaluate.class.<k>.miss_rate, and per attack
 * evaluate.<id>.{robust_accuracy,attack_success_rate,median_linf,median_l2} and evaluate.<id>.class.<k>.miss_rate.
 */
export const EVALUATE_METRIC_PATTERN =
  /^evaluate\.(?:clean_accuracy|class\.(\d+)\.miss_rate|([A-Za-z0-9_-]+)\.(?:robust_accuracy|attack_success_rate|median_linf|median_l2|class\.(\d+)\.miss_rate))$/;

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
    gate.op === '>='
      ? measured >= v
      : gate.op === '>'
        ? measured > v
        : gate.op === '<='
          ? measured <= v
          : gate.op === '<'
            ? measured < v
            : measured === v;
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

/** The data stage's gate metrics from each split's counts and pixel statistics (pixels scaled to [0, 1]). */
export function dataMetrics(
  splits: { split: string; classCounts: number[]; images: number; pixelMean: number; pixelStd: number }[],
): Record<string, number> {
  const m: Record<string, number> = {};
  for (const s of splits) {
    const total = s.classCounts.reduce((a, b) => a + b, 0);
    m[`data.${s.split}.images`] = s.images;
    m[`data.${s.split}.min_class_fraction`] = Math.min(...s.classCounts) / total;
    m[`data.${s.split}.max_class_fraction`] = Math.max(...s.classCounts) / total;
    m[`data.${s.split}.pixel_mean`] = s.pixelMean;
    m[`data.${s.split}.pixel_std`] = s.pixelStd;
  }
  return m;
}
