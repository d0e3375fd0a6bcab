// `secmlops attack --attack backdoor --trigger poison.json`: the trigger a BadNets poisoning used (from the
// poison.json `secmlops poison` wrote), stamped on the test images of the other classes; prints how many the model
// then classifies as the target.
import { writeFile } from 'node:fs/promises';
import { readRegular } from '../engine/io/regular-file.js';
import { loadSplit } from '../engine/data/fashion.js';
import { loadModel, type LoadOptions } from '../engine/onnx/model.js';
import { AttackTarget } from '../engine/attacks/target.js';
import type { Corner } from '../engine/poison/attacks.js';
import { backdoorSuccess, type BackdoorTrigger } from '../engine/poison/backdoor.js';
import { modelLimitsFrom } from './model-limits.js';
import { progressBar } from './render.js';
import { UsageError } from './usage-error.js';

export interface BackdoorCommand extends LoadOptions {
  model: string;
  data: string;
  trigger?: string;
  limit?: number;
  json?: string;
  range: string;
}

const CORNERS = ['top-left', 'top-right', 'bottom-left', 'bottom-right'];

/** The trigger of a BadNets poison.json; anything else is refused, naming the file and the field. */
export async function readTrigger(path: string): Promise<BackdoorTrigger> {
  let doc: { kind?: unknown; parameters?: Record<string, unknown> };
  try {
    // A regular file within the cap, opened without blocking: never /dev/zero or a FIFO.
    doc = JSON.parse((await readRegular(path, 64 * 1024 * 1024)).toString('utf8')) as typeof doc;
  } catch (e) {
    throw new UsageError(`--trigger: cannot read ${path} as JSON (${(e as Error).message})`);
  }
  if (doc?.kind !== 'badnets')
    throw new UsageError(`--trigger: ${path} describes a ${JSON.stringify(doc?.kind)} poisoning, not badnets`);
  const p = doc.parameters ?? {};
  const int = (k: string) => {
    if (!Number.isInteger(p[k])) throw new UsageError(`--trigger: ${path} has no integer parameters.${k}`);
    return p[k] as number;
  };
  const pos = p.position as { x?: unknown; y?: unknown } | string | undefined;
  const position =
    typeof pos === 'string'
      ? CORNERS.includes(pos)
        ? (pos as Corner)
        : undefined
      : pos && Number.isInteger(pos.x) && Number.isInteger(pos.y)
        ? { x: pos.x as number, y: pos.y as number }
        : undefined;
  if (!position) throw new UsageError(`--trigger: ${path} has no valid parameters.position`);
  return { target: int('target'), patch: int('patch'), value: int('value'), position };
}

export async function backdoorCommand(o: BackdoorCommand): Promise<void> {
  if (!o.trigger) throw new UsageError('--attack backdoor needs --trigger poison.json (from `secmlops poison`)');
  const [min, max] = o.range.split(',').map(Number);
  if (!(min < max)) throw new UsageError(`--range must be "min,max" with min < max, got "${o.range}"`);
  const trigger = await readTrigger(o.trigger);
  const model = await loadModel(o.model, modelLimitsFrom(o));
  const data = await loadSplit(o.data, 'test', { limit: o.limit });
  const target = await AttackTarget.create(model);
  const m = await backdoorSuccess((x, n) => target.logits(x, n), target.classes, data, trigger, {
    range: [min, max],
    onProgress: (done, total) =>
      process.stderr.write(
        `${process.stderr.isTTY ? '\r' : ''}backdoor ${progressBar(done, total)} ${done}/${total} images${process.stderr.isTTY ? '' : '\n'}`,
      ),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  console.log(
    `backdoor (${trigger.patch}×${trigger.patch} patch, value ${trigger.value}, target ${trigger.target}): ` +
      `${pct(m.success_rate)} of ${m.images} test images of other classes classified as the target with the ` +
      `trigger, ${pct(m.baseline_rate)} without`,
  );
  if (o.json) await writeFile(o.json, `${JSON.stringify({ model: o.model, data: o.data, trigger, ...m }, null, 2)}\n`);
}
