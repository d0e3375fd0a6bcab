// The monitor's drift judgment on real traffic: the example model's answers on Fashion-MNIST, summarised as the
// guarded server summarises them, against a reference of the first 1000 test images (what the evaluate stage
// records with limit 1000). False alarms over 50 unshifted windows from two held-out sources, detection of injected
// shifts, and what one window costs the monitor's activity (telemetry read back from disk, then scored).
// Prints the table and appends it to bench/RESULTS.md. Run with `npm run bench:drift`.
import { mkdtemp } from 'node:fs/promises';
import { appendFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSplit, type ImageSet } from '../engine/data/fashion.js';
import { referenceOf, summarise } from '../engine/monitor/stats.js';
import { TelemetryWriter, readWindow, type TelemetryRecord } from '../engine/monitor/telemetry.js';
import { scoreWindow } from '../engine/monitor/window.js';
import { loadModel } from '../engine/onnx/model.js';
import { Rng } from '../engine/runtime/rng.js';
import { createSession, floatTensor } from '../engine/runtime/session.js';

const D = 784;
const WINDOW = 180;
const T = { psi: 0.25, ksPValue: 0.001, minInputs: 100 };
const session = await createSession(await loadModel('examples/fashion-mnist/model.onnx'));
const logits = async (x: Float32Array, n: number) =>
  (await session.run({ [session.inputNames[0]]: floatTensor(x, [n, 1, 28, 28]) }))[session.outputNames[0]]
    .data as Float32Array;
const records = async (x: Float32Array, n: number): Promise<TelemetryRecord[]> =>
  summarise(x, await logits(x, n), n).map((s) => ({ ...s, t: 0, model: 'm' }));

const test = await loadSplit('/usr/share/datasets/fashion-mnist', 'test');
const train = await loadSplit('/usr/share/datasets/fashion-mnist', 'train', { limit: 50 * WINDOW });
const ref = referenceOf(await records(test.images.slice(0, 1000 * D), 1000), 10);

const slice = (s: ImageSet, w: number) => s.images.slice(w * WINDOW * D, (w + 1) * WINDOW * D);
async function windows(source: (w: number) => Float32Array, count: number) {
  let alarms = 0;
  let maxPsi = 0;
  let minP = 1;
  for (let w = 0; w < count; w++) {
    const s = scoreWindow(ref, await records(source(w), WINDOW), T);
    alarms += s.breaches.length ? 1 : 0;
    for (const d of s.drift) {
      maxPsi = Math.max(maxPsi, d.psi);
      if (d.ks) minP = Math.min(minP, d.ks.p);
    }
  }
  return { alarms, maxPsi, minP };
}

const rows: string[] = [];
const row = (what: string, r: { alarms: number; maxPsi: number; minP: number }, n: number) =>
  rows.push(`| ${what} | ${r.alarms} of ${n} | ${r.maxPsi.toFixed(3)} | ${r.minP.toExponential(1)} |`);
const held = { images: test.images.subarray(1000 * D) } as ImageSet;
row('test images 1000–9999, unshifted', await windows((w) => slice(held, w), 50), 50);
row('training images 0–8999, unshifted', await windows((w) => slice(train, w), 50), 50);
for (const [bright, noise] of [
  [0.05, 0],
  [0.1, 0],
  [0, 0.1],
  [0.15, 0.1],
]) {
  const rng = new Rng(11);
  const shift = (x: Float32Array) =>
    x.map((v) => Math.min(1, Math.max(0, v + bright + (noise ? noise * rng.normal() : 0))));
  row(`brightness +${bright}, noise σ ${noise}`, await windows((w) => shift(slice(held, w)), 20), 20);
}

// One window's cost in the activity: 10 windows' worth of telemetry on disk, one window read back and scored.
const dir = await mkdtemp(join(tmpdir(), 'secmlops-drift-'));
const writer = new TelemetryWriter(dir, 'serve-bench', { maxFileBytes: 64 << 20, files: 2 });
const base = Date.now() - 60_000;
for (let w = 0; w < 10; w++)
  writer.append((await records(slice(held, w), WINDOW)).map((r, i) => ({ ...r, t: base + w * 1000 + i, model: 'm' })));
await writer.close();
const costs: number[] = [];
let judged = 0;
for (let k = 0; k < 20; k++) {
  const t0 = performance.now();
  const { records: got } = await readWindow(dir, {
    model: 'm',
    since: base + 5000,
    until: base + 6000,
    maxFileBytes: 64 << 20,
  });
  judged = scoreWindow(ref, got, T).inputs;
  costs.push(performance.now() - t0);
}
costs.sort((a, b) => a - b);

const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
const report = `\n## Monitor drift — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC

${machine}. \`npm run bench:drift\`; example model, reference = test images 0–999, windows of ${WINDOW} inputs, a
window alarms when a statistic's PSI ≥ ${T.psi} and its KS p < ${T.ksPValue} (the predicted class: PSI alone).

| stream | windows alarmed | largest PSI | smallest KS p |
| --- | --- | --- | --- |
${rows.join('\n')}

One window judged by the monitor's activity (1,800 telemetry records on disk, ${WINDOW} in the window, read and
scored): median ${costs[10].toFixed(1)} ms; the window held ${judged} records.
`;
console.log(report);
await appendFile('bench/RESULTS.md', report);
