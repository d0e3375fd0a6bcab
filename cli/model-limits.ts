// The model limits as command-line options (inspect, attack): each flag named after the limit it sets, so an
// OnnxError's "raise it with --max-nodes" points at the right one.
import type { Command } from 'commander';
import { MODEL_LIMITS, type LoadOptions, type ModelLimits } from '../engine/onnx/limits.js';

const FLAGS: Record<keyof ModelLimits, string> = {
  maxBytes: 'the model file',
  maxTensorBytes: 'any one tensor, dense',
  maxTotalTensorBytes: 'all tensors together, dense',
  maxNodes: 'nodes, with local functions expanded',
  maxInitializers: 'initializers and tensor attributes',
  maxGraphDepth: 'subgraph nesting',
  maxMessages: 'protobuf messages of any kind',
  maxValues: 'separately encoded repeated values',
};

const flag = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function positive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1, not "${value}"`);
  return n;
}

export function withModelLimits(cmd: Command): Command {
  for (const [k, what] of Object.entries(FLAGS) as [keyof ModelLimits, string][]) {
    const unit = /Bytes$/.test(k) ? ' (bytes)' : '';
    cmd.option(`--${flag(k)} <n>`, `limit on ${what}${unit} (default ${MODEL_LIMITS[k]})`, (v) => positive(v, flag(k)));
  }
  return cmd;
}

export function modelLimitsFrom(o: Partial<Record<keyof ModelLimits, number>>): LoadOptions {
  const out: LoadOptions = {};
  for (const k of Object.keys(FLAGS) as (keyof ModelLimits)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
