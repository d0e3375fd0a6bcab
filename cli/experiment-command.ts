// `secmlops experiment FILE`: runs the defenses × attacks grid as workflows on the connected server's workers and
// writes results.json, results.md and chart.svg. A bad file is refused (exit 2) before anything connects.
import type { Client } from '@temporalio/client';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readBounded } from '../activities/policy-source.js';
import { FASHION_FILES } from '../engine/data/fashion.js';
import { markdownTable, svgChart } from '../experiment/render.js';
import { parseExperiment, type ExperimentSpec } from '../experiment/spec.js';
import { PolicyError } from '../policy/index.js';
import { TASK_QUEUE } from '../workflows/messages.js';
import { experimentGrid, experimentStatusQuery, type CellResult } from '../workflows/experiment.js';
import { UsageError } from './usage-error.js';

export interface ExperimentOptions {
  quick?: boolean;
  out?: string;
  id?: string;
}

export function readExperiment(file: string, quick: boolean): ExperimentSpec {
  let spec: ExperimentSpec;
  try {
    const text = readBounded(file, 1 << 20, (why) => new UsageError(`${file}: ${why}`));
    spec = parseExperiment(text, file, { quick });
  } catch (e) {
    throw e instanceof PolicyError ? new UsageError(e.message) : e;
  }
  spec.data = resolve(spec.data);
  for (const f of [...Object.values(FASHION_FILES.train), ...Object.values(FASHION_FILES.test)])
    if (!existsSync(join(spec.data, f)))
      throw new UsageError(`${file}: data: ${spec.data} has no ${f} (install dataset-fashion-mnist)`);
  return spec;
}

const pct = (x: number) => (Number.isNaN(x) ? '—' : `${(100 * x).toFixed(1)}%`);
const line = (r: CellResult) =>
  `${r.defense} × ${r.attack}: miss ${pct(r.safetyCritical.missRate)}, robust ${pct(r.robustAccuracy)}, ` +
  `clean ${pct(r.cleanAccuracy)}${r.model.cached ? ' (model cached)' : `, trained in ${r.model.seconds.toFixed(0)} s`}`;

export async function experimentCommand(
  connect: () => Promise<Client>,
  file: string,
  o: ExperimentOptions,
): Promise<void> {
  const spec = readExperiment(file, !!o.quick);
  const out = resolve(o.out ?? join('experiments', spec.name + (o.quick ? '-quick' : '')));
  const client = await connect();
  const workflowId = o.id ?? `experiment-${spec.name}${o.quick ? '-quick' : ''}-${Date.now().toString(36)}`;
  const started = Date.now();
  const handle = await client.workflow.start(experimentGrid, { taskQueue: TASK_QUEUE, workflowId, args: [{ spec }] });
  const cells = spec.defenses.length * spec.attacks.length;
  console.log(`Experiment ${workflowId}: ${cells} cells (${spec.defenses.join(', ')} × ${spec.attacks.join(', ')})`);
  let shown = 0;
  const poll = setInterval(() => {
    void handle
      .query(experimentStatusQuery)
      .then((s) => {
        for (; shown < s.done.length; shown++) console.log(`[${shown + 1}/${cells}] ${line(s.done[shown])}`);
      })
      .catch(() => undefined);
  }, 2000);
  let results: CellResult[];
  try {
    results = await handle.result();
  } finally {
    clearInterval(poll);
  }
  for (; shown < results.length; shown++) console.log(`[${shown + 1}/${cells}] ${line(results[shown])}`);
  const seconds = (Date.now() - started) / 1000;
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'results.json'), `${JSON.stringify({ workflowId, seconds, spec, results }, null, 1)}\n`);
  await writeFile(join(out, 'results.md'), `${markdownTable(spec, results)}\n`);
  await writeFile(join(out, 'chart.svg'), svgChart(spec, results));
  console.log(
    `\n${markdownTable(spec, results)}\n\n` +
      `Wrote results.json, results.md and chart.svg to ${out} (${seconds.toFixed(0)} s).`,
  );
}
