// Messages between a supervising process and an engine job process.
import type { AttackSpec } from '../attacks/run.js';
import type { AttackMetrics } from '../metrics/metrics.js';

export interface EvaluateRequest {
  kind: 'evaluate';
  modelPath: string;
  /** The digest the model's bytes must have; checked again right before they are parsed. */
  modelSha256: string;
  images: string;
  labels: string;
  classes: number;
  limit?: number;
  range: [number, number];
  seed: number;
  attacks: (AttackSpec & { id: string })[];
  curve?: { attack: 'fgsm' | 'pgd'; steps?: number; eps: number[] };
  threads?: number;
  executionProvider?: 'cpu' | 'cuda';
}

export interface EvaluateResult {
  cleanAccuracy: number;
  images: number;
  /** Ops without a gradient rule; white-box attacks were replaced by Square Attack when non-empty. */
  withoutGradient: string[];
  attacks: { id: string; spec: AttackSpec; metrics: AttackMetrics; seconds: number }[];
  curve?: { attack: string; eps: number; robustAccuracy: number }[];
}

export type JobRequest = EvaluateRequest;

export interface JobProgress {
  task: string;
  done: number;
  total: number;
}

export type JobMessage = { type: 'progress'; progress: JobProgress } | { type: 'result'; result: unknown } | { type: 'error'; message: string };
