// `secmlops experiment FILE`: runs the defenses × attacks grid as workflows on the connected server's workers and
// writes results.json, results.md and chart.svg. A bad file is refused (exit 2) before anything connects.
import type { Client } from '@temporalio/client';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
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
  /** Keep the cells already in `<out>/results.json` (measured on the same spec) and run the others. */
  resume?: boolean;
}

/** What results.json holds; written after every cell, `complete` once the whole grid is in. */
interface SavedResults {
  complete: boolean;
  /** Wall time of all runs together. */
  seconds: number;
  runs: Array<{ workflowId: string; seconds: number; cells: number; finished: string }>;
  spec: ExperimentSpec;
  results: CellResult[];
}

const canonical = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );

/** The finished cells of an earlier run into `out`, refused unless it measured exactly this spec. */
function earlierResults(out: string, spec: ExperimentSpec): SavedResults | undefined {
  const file = join(out, 'results.json');
  if (!existsSync(file)) return undefined;
  const where = `--resume: ${file}`;
  let saved: Partial<SavedResults>;
  try {
    saved = JSON.parse(readBounded(file, 64 << 20, (why) => new UsageError(`${where}: ${why}`))) as typeof saved;
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError(`${where}: not JSON (${(e as Error).message})`);
  }
  if (!saved || typeof saved !== 'object' || !Array.isArray(saved.results) || !saved.spec)
    throw new UsageError(`${where}: no spec and results`);
  const before = saved.spec as unknown as Record<string, unknown>;
  const now = spec as unknown as Record<string, unknown>;
  const differs = [...new Set([...Object.keys(before), ...Object.keys(now)])].filter(
    (k) => canonical(before[k]) !== canonical(now[k]),
  );
  if (differs.length)
    throw new UsageError(`${where}: measured another experiment (${differs.join(', ')} differ); pick another --out`);
  const cells = new Map<string, CellResult>();
  for (const r of saved.results)
    if (spec.defenses.includes(r?.defense) && spec.attacks.includes(r?.attack))
      cells.set(`${r.defense}/${r.attack}`, r);
  return {
    complete: false,
    seconds: typeof saved.seconds === 'number' ? saved.seconds : 0,
    runs: Array.isArray(saved.runs) ? saved.runs : [],
    spec,
    results: [...cells.values()],
  };
}

async function save(out: string, s: SavedResults): Promise<void> {
  await mkdir(out, { recursive: true });
  // Written whole to a temporary name and renamed: a run killed mid-write keeps the previous file.
  const tmp = join(out, `.results.json.${process.pid}`);
  await writeFile(tmp, `${JSON.stringify(s, null, 1)}\n`);
  await rename(tmp, join(out, 'results.json'));
  await writeFile(join(out, 'results.md'), `${markdownTable(s.spec, s.results)}\n`);
  await writeFile(join(out, 'chart.svg'), svgChart(s.spec, s.results));
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
  const earlier = o.resume ? earlierResults(out, spec) : undefined;
  const saved: SavedResults = earlier ?? { complete: false, seconds: 0, runs: [], spec, results: [] };
  const client = await connect();
  const workflowId = o.id ?? `experiment-${spec.name}${o.quick ? '-quick' : ''}-${Date.now().toString(36)}`;
  const started = Date.now();
  const skip = saved.results.map((r) => ({ defense: r.defense, attack: r.attack }));
  const handle = await client.workflow.start(experimentGrid, {
    taskQueue: TASK_QUEUE,
    workflowId,
    args: [{ spec, skip }],
  });
  const cells = spec.defenses.length * spec.attacks.length;
  const kept = saved.results.length;
  console.log(
    `Experiment ${workflowId}: ${cells} cells (${spec.defenses.join(', ')} × ${spec.attacks.join(', ')})` +
      (o.resume ? `, ${kept} kept from ${join(out, 'results.json')}` : ''),
  );
  const run = { workflowId, seconds: 0, cells: 0, finished: '' };
  saved.runs.push(run);
  const base = saved.seconds;
  let shown = 0;
  // Each finished cell is printed and saved as it lands: a run stopped part way keeps what it measured.
  let writing = Promise.resolve();
  const record = (done: CellResult[]) => {
    if (shown >= done.length) return writing;
    for (; shown < done.length; shown++) {
      console.log(`[${kept + shown + 1}/${cells}] ${line(done[shown])}`);
      saved.results.push(done[shown]);
    }
    run.cells = shown;
    run.seconds = (Date.now() - started) / 1000;
    run.finished = new Date().toISOString();
    saved.seconds = base + run.seconds;
    writing = writing.then(() => save(out, saved));
    return writing;
  };
  const poll = setInterval(() => {
    void handle
      .query(experimentStatusQuery)
      .then((s) => record(s.done))
      .catch(() => undefined);
  }, 2000);
  try {
    await record(await handle.result());
  } finally {
    clearInterval(poll);
  }
  await writing;
  saved.complete = true;
  run.seconds = (Date.now() - started) / 1000;
  saved.seconds = base + run.seconds;
  await save(out, saved);
  console.log(
    `\n${markdownTable(spec, saved.results)}\n\n` +
      `Wrote results.json, results.md and chart.svg to ${out} (${saved.seconds.toFixed(0)} s` +
      (saved.runs.length > 1 ? ` over ${saved.runs.length} runs` : '') +
      ').',
  );
}
