// Outcome counts per parser and the summary run.ts prints; the jest sample asserts on the same numbers.
import { readFileSync, writeFileSync } from 'node:fs';
import { refusalKind, type CaseResult } from './execute.js';

export interface Finding {
  parser: string;
  seed: number;
  index: number;
  kind: string;
  applied: string[];
  message: string;
}

export interface KindStats {
  cases: number;
  decodes: number;
  accepted: number;
}

export interface ParserStats {
  /** A parser, or `cli:ENTRY` for a CLI entry point. */
  parser: string;
  /** What "decodes" means for these inputs, as the summary says it. */
  container: string;
  cases: number;
  accepted: number;
  refused: number;
  refusals: Map<string, number>;
  findings: Finding[];
  notes: Map<string, { count: number; example: string }>;
  kinds: Map<string, KindStats>;
  mutatorErrors: number;
  maxMs: number;
  maxCase: number;
  totalMs: number;
  /** The largest peak RSS of one case (a process's, for CLI cases), and which case. */
  maxRss: number;
  maxRssCase: number;
}

const CONTAINER: Partial<Record<string, string>> = {
  onnx: 'decode as protobuf',
  idx: 'inflate to a readable IDX header',
  policy: 'parse as YAML',
};

export function newStats(parser: string, container = CONTAINER[parser] ?? 'decode'): ParserStats {
  return {
    parser,
    container,
    cases: 0,
    accepted: 0,
    refused: 0,
    refusals: new Map(),
    findings: [],
    notes: new Map(),
    kinds: new Map(),
    mutatorErrors: 0,
    maxMs: 0,
    maxCase: -1,
    totalMs: 0,
    maxRss: 0,
    maxRssCase: -1,
  };
}

/** What the stats need of a case: in-process cases and CLI cases both have it. */
export interface CaseInfo {
  parser: string;
  seed: number;
  index: number;
  kind: string;
  applied: string[];
  decodes: boolean;
}

export function record(s: ParserStats, c: CaseInfo, r: CaseResult): void {
  s.cases++;
  s.totalMs += r.ms;
  if (r.ms > s.maxMs) [s.maxMs, s.maxCase] = [r.ms, c.index];
  if ((r.peakRss ?? 0) > s.maxRss) [s.maxRss, s.maxRssCase] = [r.peakRss!, c.index];
  const k = s.kinds.get(c.kind) ?? { cases: 0, decodes: 0, accepted: 0 };
  s.kinds.set(c.kind, k);
  k.cases++;
  if (c.decodes) k.decodes++;
  if (r.outcome === 'accepted') {
    s.accepted++;
    k.accepted++;
  } else if (r.outcome === 'refused') {
    s.refused++;
    const kind = refusalKind(r.error ?? r.message ?? 'refused');
    s.refusals.set(kind, (s.refusals.get(kind) ?? 0) + 1);
  } else {
    s.findings.push({
      parser: c.parser,
      seed: c.seed,
      index: c.index,
      kind: c.kind,
      applied: c.applied,
      message: r.message ?? '',
    });
  }
  for (const n of r.notes) {
    const key = n.replace(/\d+/g, 'N').slice(0, 60);
    const seen = s.notes.get(key) ?? { count: 0, example: `case ${c.index}: ${n}` };
    seen.count++;
    s.notes.set(key, seen);
  }
}

/**
 * Starts this process's peak RSS (VmHWM) afresh at its current RSS, so the next reading is the peak of what ran in
 * between (Linux 4.0+: writing 5 to clear_refs). False where that is not possible.
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** A process's peak resident memory in bytes (VmHWM), or undefined where /proc is not there. */
export function peakRss(pid: number | 'self' = 'self'): number | undefined {
  return statusKb(pid, 'VmHWM');
}

/** This process's resident memory now, in bytes (VmRSS). */
export function currentRss(): number | undefined {
  return statusKb('self', 'VmRSS');
}

function statusKb(pid: number | 'self', field: string): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const mib = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 2 ** 20)} MiB`);
const pct = (n: number, d: number) => (d ? `${Math.round((100 * n) / d)}%` : 'n/a');

/** The share of structure-aware cases that still decode as the container format. */
export function structDecodeShare(s: ParserStats): number {
  const k = s.kinds.get('struct');
  return k && k.cases ? k.decodes / k.cases : 0;
}

/** The summary of one parser's (or entry point's) cases; `processPeak` is the fuzzing process's own VmHWM. */
export function summary(s: ParserStats, processPeak?: number): string {
  const cli = s.parser.startsWith('cli:');
  const lines = [
    `${s.parser}: ${s.cases} cases, ${s.accepted} accepted, ${s.refused} refused, ${s.findings.length} findings` +
      (s.mutatorErrors ? `, ${s.mutatorErrors} mutator errors (fuzzer bugs, not counted)` : ''),
    `  time: max ${s.maxMs.toFixed(0)} ms (case ${s.maxCase}), total ${(s.totalMs / 1000).toFixed(1)} s`,
    `  memory: ${cli ? 'largest peak RSS of a CLI process' : 'largest peak RSS (VmHWM) while one case ran'} ` +
      `${mib(s.maxRss)} (case ${s.maxRssCase})` +
      (processPeak === undefined ? '' : `; fuzz process peak ${mib(processPeak)}`),
  ];
  for (const [kind, k] of [...s.kinds].sort()) {
    lines.push(
      `  ${kind}: ${k.cases} cases, ${s.container ? `${pct(k.decodes, k.cases)} ${s.container}, ` : ''}${pct(k.accepted, k.cases)} accepted`,
    );
  }
  if (s.refusals.size) lines.push('  top refusals:');
  for (const [kind, n] of [...s.refusals].sort((a, b) => b[1] - a[1]).slice(0, 10))
    lines.push(`    ${String(n).padStart(5)}  ${kind}`);
  for (const [, n] of s.notes) lines.push(`  note ×${n.count}: ${n.example.slice(0, 300)}`);
  for (const f of s.findings) lines.push(`  ${describeFinding(f)}`);
  return lines.join('\n');
}

export function describeFinding(f: Finding): string {
  return (
    `FINDING ${f.parser} seed ${f.seed} case ${f.index} (${f.kind}: ${f.applied.join(', ')}): ${f.message}\n` +
    `    reproduce: node --import tsx fuzz/run.ts --parser ${f.parser.replace(/^cli:/, '')} --seed ${f.seed} --case ${f.index}${f.parser.startsWith('cli:') ? ' --cli' : ''}`
  );
}
