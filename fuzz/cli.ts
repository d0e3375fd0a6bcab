// CLI mode: mutated files through the real command (`node bin/secmlops.js …`), one process per case. Each must exit
// 0, or non-zero with a one-line `secmlops: …` error: a stack trace, a death by signal, more than the time budget or
// more than 1 GiB peak resident memory is a finding. Peak memory comes from GNU time's %M (the child's maxrss) where
// /usr/bin/time exists, otherwise from VmHWM sampled while the child runs.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { FASHION_FILES } from '../engine/data/fashion.js';
import { attestationCase, RELEASE_PUB } from './attestation.js';
import { mutateBytes } from './bytes.js';
import { makeCase, withDecodes } from './cases.js';
import type { CaseResult } from './execute.js';
import { encodeIdx, mutateIdx, rawIdx, type IdxSpec } from './idx-mutators.js';
import { MEMORY_BUDGET_BYTES } from './in-process.js';
import { caseRng, type FuzzRng } from './rng.js';
import { VALID_KEY, onnxSeeds } from './seeds.js';
import { describeFinding, mib, newStats, peakRss, record, summary, type CaseInfo, type ParserStats } from './stats.js';

export const CLI_ENTRIES = ['inspect', 'attack-model', 'attack-data', 'check', 'verify'] as const;
export type CliEntry = (typeof CLI_ENTRIES)[number];

/** Per process: a node start (about a second), loading the model, five images attacked. */
export const CLI_BUDGET_MS = 20_000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TIME = '/usr/bin/time';
/** Messages that are a JavaScript error's own text rather than a sentence the product wrote: noted, not findings. */
const INTERNAL =
  /TypeError|RangeError|ReferenceError|Cannot (read|set|use|convert)|is not (a function|iterable|defined)|of (undefined|null)|Maximum call stack|Invalid (array|string) length/;
/** What "decodes" means for each entry's inputs; none for inputs the fuzzer builds whole (data sets, attestations). */
const CONTAINER: Record<CliEntry, string> = {
  inspect: 'decode as protobuf',
  'attack-model': 'decode as protobuf',
  'attack-data': '',
  check: 'parse as YAML',
  verify: '',
};
const ATTACK = ['--attack', 'fgsm', '--eps', '0.1', '--limit', '5'];

interface Fixture {
  tmp: string;
  goodModel: string;
  goodData: string;
  /** Where policies are written: two levels below a .secmlops/keys folder, as in the example's relative paths. */
  policyDir: string;
  releasePub: string;
  env: NodeJS.ProcessEnv;
}

/** The dataset `attack-data` mutates: five 28×28 images and their labels, as the small CNN reads them. */
function datasetSpecs(rng: FuzzRng): { images: IdxSpec; labels: IdxSpec } {
  const base = { magic: [0, 0] as [number, number], type: 0x08, zeros: 0, gzip: 'single' as const };
  return {
    images: { ...base, rank: 3, dims: [5, 28, 28], payload: rng.bytes(5 * 784) },
    labels: { ...base, rank: 1, dims: [5], payload: Uint8Array.from({ length: 5 }, () => rng.int(10)) },
  };
}

async function setup(tmp: string): Promise<Fixture> {
  const goodModel = join(tmp, 'good.onnx');
  await writeFile(goodModel, onnxSeeds()[0]);
  const goodData = join(tmp, 'data');
  await mkdir(goodData);
  const { images, labels } = datasetSpecs(caseRng(0, 'dataset', 0));
  await writeFile(join(goodData, FASHION_FILES.test.images), gzipSync(rawIdx(images)));
  await writeFile(join(goodData, FASHION_FILES.test.labels), gzipSync(rawIdx(labels)));
  const keys = join(tmp, 'policies', '.secmlops', 'keys');
  await mkdir(keys, { recursive: true });
  for (const name of ['cli', 'console', 'slack', 'github', 'release'])
    await writeFile(join(keys, `${name}.pub`), `${VALID_KEY}\n`);
  const policyDir = join(tmp, 'policies', 'a', 'b');
  await mkdir(policyDir, { recursive: true });
  await writeFile(join(policyDir, 'junk.pub'), 'not a key\n');
  // A FIFO where a key file may be named: reading it would block forever.
  try {
    execFileSync('mkfifo', [join(policyDir, 'fifo')]);
  } catch {
    // No mkfifo: the case names a missing file instead, still refused.
  }
  const releasePub = join(tmp, 'release.pub');
  await writeFile(releasePub, `${RELEASE_PUB}\n`);
  // Nothing connects anywhere (port 1), and the CLI's state folder is the run's own.
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', SECMLOPS_HOME: join(tmp, 'home'), SECMLOPS_DEBUG: '' };
  return { tmp, goodModel, goodData, policyDir, releasePub, env };
}

interface Prepared extends CaseInfo {
  args: string[];
  /** Files to write before the run (absolute path → bytes), removed after it. */
  files: Map<string, Uint8Array>;
}

function prepare(entry: CliEntry, seed: number, index: number, fx: Fixture): Prepared {
  const dir = join(fx.tmp, 'cases', `${entry}-${index}`);
  const files = new Map<string, Uint8Array>();
  const info = { parser: `cli:${entry}`, seed, index };
  if (entry === 'inspect' || entry === 'attack-model') {
    // inspect gets the in-process ONNX cases (`--cli --entry inspect --case N` is `--parser onnx --case N`); attack
    // gets mutants of the small CNN only, the one seed whose input shape it can feed, so accepted mutants reach
    // onnxruntime.
    const c = withDecodes(
      entry === 'inspect' ? makeCase('onnx', seed, index) : makeCase('onnx', seed ^ 0x5eed, index, 0),
    );
    const model = join(dir, 'model.onnx');
    files.set(model, c.input);
    const args =
      entry === 'inspect' ? ['inspect', model] : ['attack', '--model', model, '--data', fx.goodData, ...ATTACK];
    return { ...info, kind: c.kind, applied: c.applied, decodes: c.decodes, args, files };
  }
  const rng = caseRng(seed, `cli:${entry}`, index);
  if (entry === 'attack-data') {
    const specs = datasetSpecs(rng);
    const which = rng.pick(['images', 'labels', 'both'] as const);
    const applied: string[] = [];
    const file = (name: 'images' | 'labels'): Uint8Array => {
      if (which !== name && which !== 'both') return encodeIdx(specs[name], rng);
      if (rng.chance(0.3)) {
        applied.push(`${name}:bytes`);
        return mutateBytes(rng, encodeIdx(specs[name], rng));
      }
      const m = mutateIdx(rng, specs[name]);
      applied.push(...m.applied.map((a) => `${name}:${a}`));
      return encodeIdx(m.spec, rng);
    };
    files.set(join(dir, FASHION_FILES.test.images), file('images'));
    files.set(join(dir, FASHION_FILES.test.labels), file('labels'));
    const args = ['attack', '--model', fx.goodModel, '--data', dir, ...ATTACK];
    return {
      ...info,
      kind: applied.some((a) => a.endsWith(':bytes')) ? 'bytes' : 'struct',
      applied,
      decodes: true,
      args,
      files,
    };
  }
  if (entry === 'check') {
    const c = withDecodes(makeCase('policy', seed, index));
    const policy = join(fx.policyDir, `case-${index}.yaml`);
    files.set(policy, c.input);
    return { ...info, kind: c.kind, applied: c.applied, decodes: c.decodes, args: ['check', policy], files };
  }
  const c = attestationCase(rng);
  const file = join(dir, 'attestation.json');
  files.set(file, c.input);
  return {
    ...info,
    kind: c.kind,
    applied: c.applied,
    decodes: true,
    args: ['verify', file, '--key', fx.releasePub],
    files,
  };
}

interface Ran {
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  ms: number;
  peak: number | undefined;
  timedOut: boolean;
}

/** Runs the CLI with args; the child gets its own process group so a hung one is killed with all it started. */
async function runCli(args: string[], fx: Fixture, timeFile: string): Promise<Ran> {
  const useTime = existsSync(TIME);
  const argv = [join(ROOT, 'bin', 'secmlops.js'), ...args];
  const child = useTime
    ? spawn(TIME, ['-f', '%M', '-o', timeFile, process.execPath, ...argv], { cwd: ROOT, env: fx.env, detached: true })
    : spawn(process.execPath, argv, { cwd: ROOT, env: fx.env, detached: true });
  const t0 = performance.now();
  let stderr = '';
  let stdout = '';
  // Tails only: a case's output is not allowed to grow the fuzzer.
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-20_000)));
  child.stdout.on('data', (b: Buffer) => (stdout = (stdout + b.toString()).slice(-20_000)));
  let sampled: number | undefined;
  const pid = child.pid;
  const sampler = useTime || pid === undefined ? undefined : setInterval(() => (sampled = peakRss(pid) ?? sampled), 50);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.kill(-child.pid!, 'SIGKILL');
  }, CLI_BUDGET_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    child.once('exit', (c, s) => r([c, s])),
  );
  clearTimeout(timer);
  if (sampler) clearInterval(sampler);
  const ms = performance.now() - t0;
  if (!useTime) return { code, signal: signal ?? undefined, stdout, stderr, ms, peak: sampled, timedOut };
  // GNU time exits with the child's status, or 128+N and "Command terminated by signal N" when a signal ended it.
  const report = await readFile(timeFile, 'utf8').catch(() => '');
  const bySignal = /terminated by signal (\d+)/.exec(report);
  const kb = /(\d+)\s*$/.exec(report.trim());
  return {
    code: bySignal ? null : code,
    signal: bySignal ? `signal ${bySignal[1]}` : (signal ?? undefined),
    stdout,
    stderr,
    ms,
    peak: kb ? Number(kb[1]) * 1024 : undefined,
    timedOut,
  };
}

function classify(r: Ran): CaseResult {
  const base = { ms: r.ms, notes: [] as string[] };
  const over = (r.peak ?? 0) > MEMORY_BUDGET_BYTES ? `peak RSS ${mib(r.peak)}, over the 1 GiB budget; ` : '';
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  if (r.timedOut)
    return { ...base, outcome: 'finding', message: `${over}still running after ${CLI_BUDGET_MS} ms (killed)` };
  if (r.signal) return { ...base, outcome: 'finding', message: `${over}died by ${r.signal}: ${last.slice(0, 200)}` };
  if (over) return { ...base, outcome: 'finding', message: over.replace(/; $/, '') };
  if (r.code === 0) return { ...base, outcome: 'accepted' };
  // Progress lines may come first (attack writes them to stderr); the error is the last line and the only one.
  const lines = r.stderr.split('\n').filter((l) => l.trim());
  const at = lines.findIndex((l) => l.startsWith('secmlops:'));
  const stack = /^\s+at .+/m.test(r.stderr);
  if (stack || at < 0 || at !== lines.length - 1)
    return {
      ...base,
      outcome: 'finding',
      message: `exit ${r.code} without a one-line error${stack ? ' (stack trace)' : ''}: ${r.stderr.trim().slice(-400)}`,
    };
  let message = last.replace(/^secmlops: (error: )?/, '');
  // `verify` lists what failed on stdout and ends with a count: the first problem says more than the count.
  const problem = /^\s*✘ (.*)$/m.exec(r.stdout);
  if (message.startsWith('verification failed') && problem) message = `verification failed: ${problem[1]}`;
  if (INTERNAL.test(message))
    base.notes.push(`a JavaScript error's own message reached the user: ${message.slice(0, 200)}`);
  return { ...base, outcome: 'refused', message };
}

export interface CliFuzzOptions {
  entries: CliEntry[];
  seed: number;
  count: number;
  from?: number;
  jobs: number;
  tmp: string;
  log: (line: string) => void;
}

/** Runs `count` cases per entry point, `jobs` processes at a time; returns each entry point's outcomes. */
export async function runCliFuzz(o: CliFuzzOptions): Promise<ParserStats[]> {
  const fx = await setup(o.tmp);
  o.log(
    `fuzz --cli: seed ${o.seed}, ${o.count} cases per entry point, ${o.jobs} at a time, budget ${CLI_BUDGET_MS} ms, ` +
      `peak memory from ${existsSync(TIME) ? `${TIME} %M` : 'VmHWM samples'}`,
  );
  const all: ParserStats[] = [];
  for (const entry of o.entries) {
    const stats = newStats(`cli:${entry}`, CONTAINER[entry]);
    const queue = Array.from({ length: o.count }, (_, i) => (o.from ?? 0) + i);
    const worker = async (slot: number) => {
      for (let index = queue.shift(); index !== undefined; index = queue.shift()) {
        const p = prepare(entry, o.seed, index, fx);
        for (const [path, bytes] of p.files) {
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, bytes);
        }
        const ran = await runCli(p.args, fx, join(o.tmp, `time-${slot}.txt`));
        const r = { ...classify(ran), peakRss: ran.peak };
        const before = stats.findings.length;
        record(stats, p, r);
        if (stats.findings.length > before) o.log(describeFinding(stats.findings[before]));
        for (const path of p.files.keys()) await rm(path, { force: true });
        await rm(join(o.tmp, 'cases', `${entry}-${index}`), { recursive: true, force: true });
      }
    };
    await Promise.all(Array.from({ length: o.jobs }, (_, slot) => worker(slot)));
    o.log(summary(stats));
    all.push(stats);
  }
  return all;
}
