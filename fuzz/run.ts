// The fuzz suite's command (issue 12):
//   node --import tsx fuzz/run.ts [--cases N] [--seed S] [--parser onnx|idx|policy] [--verbose]
//   node --import tsx fuzz/run.ts --cli [--cases N] [--seed S] [--entry inspect|attack-model|attack-data|check|verify]
//                                 [--jobs J]
//   either with --case N (and --parser or --entry) to run one case again; in-process, --save FILE keeps its input.
// In-process mode runs N cases per parser (default 1,000); --cli runs N cases per CLI entry point (default 100, J
// processes at a time, default 2) through `node bin/secmlops.js`. Findings are printed with the seed and case number
// that reproduce them; the exit code is 1 when there are any.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PARSERS, makeCase, withDecodes, type Parser } from './cases.js';
import { CLI_ENTRIES, runCliFuzz, type CliEntry } from './cli.js';
import { CASE_BUDGET_MS, execute } from './execute.js';
import { fuzzParser } from './in-process.js';
import { mib, peakRss, summary } from './stats.js';
import { startWatchdog } from './watchdog.js';

const { values: o } = parseArgs({
  options: {
    cases: { type: 'string' },
    seed: { type: 'string', default: '1' },
    parser: { type: 'string' },
    entry: { type: 'string' },
    case: { type: 'string' },
    save: { type: 'string' },
    cli: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    jobs: { type: 'string', default: '2' },
  },
});

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got "${v}"`);
  return n;
}

function choice<T extends string>(name: string, v: string | undefined, all: readonly T[]): T[] {
  if (v === undefined) return [...all];
  if (!(all as readonly string[]).includes(v))
    throw new Error(`--${name} must be one of ${all.join(', ')}, got "${v}"`);
  return [v as T];
}

const seed = int('seed', o.seed, 1);
const single = o.case === undefined ? undefined : int('case', o.case, 0);
const tmp = await mkdtemp(join(tmpdir(), 'secmlops-fuzz-'));
let findings = 0;
try {
  if (o.cli) {
    const entries = choice<CliEntry>('entry', o.entry ?? o.parser, CLI_ENTRIES);
    const stats = await runCliFuzz({
      entries,
      seed,
      count: single === undefined ? int('cases', o.cases, 100) : 1,
      from: single ?? 0,
      jobs: Math.max(1, int('jobs', o.jobs, 2)),
      tmp,
      log: (l) => console.log(l),
    });
    findings = stats.reduce((n, s) => n + s.findings.length, 0);
  } else if (single !== undefined) {
    // One case, described in full: what was applied, what the parser said, and optionally the input itself.
    const [parser] = choice<Parser>('parser', o.parser ?? 'onnx', PARSERS);
    const made = makeCase(parser, seed, single);
    const r = await execute(made, tmp);
    const peak = peakRss(); // before withDecodes, whose own decode would count otherwise
    const c = withDecodes(made);
    console.log(`${parser} seed ${seed} case ${single}: ${c.kind} (${c.applied.join(', ')}), ${c.input.length} bytes`);
    console.log(`  decodes as container: ${c.decodes}; outcome: ${r.outcome} in ${r.ms.toFixed(0)} ms`);
    console.log(`  process peak RSS (VmHWM): ${mib(peak)}`);
    if (r.message) console.log(`  ${r.message}`);
    for (const n of r.notes) console.log(`  note: ${n}`);
    if (o.save) {
      await writeFile(o.save, c.input);
      console.log(`  input written to ${o.save}`);
    }
    if (r.outcome === 'finding') findings = 1;
  } else {
    const parsers = choice<Parser>('parser', o.parser, PARSERS);
    const count = int('cases', o.cases, 1000);
    // The watchdog kills only what the measured budget cannot report: a case still running at three times it.
    const watchdog = startWatchdog(seed, PARSERS, 3 * CASE_BUDGET_MS);
    console.log(`fuzz: seed ${seed}, ${count} cases per parser, budget ${CASE_BUDGET_MS} ms per case`);
    for (const parser of parsers) {
      const started = Date.now();
      const onCase = o.verbose ? (p: string, i: number) => process.stderr.write(`${p} case ${i}\n`) : undefined;
      const stats = await fuzzParser(parser, { seed, count, tmp, watchdog, onCase, onFinding: (l) => console.log(l) });
      console.log(summary(stats, stats.processPeak));
      console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s wall)`);
      findings += stats.findings.length;
    }
    await watchdog.stop();
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
console.log(findings ? `${findings} finding${findings === 1 ? '' : 's'}` : 'no findings');
process.exitCode = findings ? 1 : 0;
