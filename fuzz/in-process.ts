// The in-process loop: cases of one parser, one after another, each generated from (seed, parser, number) and run
// through its parser. The process's peak RSS is reset before each case and read after it, so each case's memory is
// its own.
import v8 from 'node:v8';
import vm from 'node:vm';
import { MutatorError, makeCase, withDecodes, type Parser } from './cases.js';
import { execute } from './execute.js';
import {
  currentRss,
  describeFinding,
  mib,
  newStats,
  peakRss,
  record,
  resetPeakRss,
  type ParserStats,
} from './stats.js';
import type { Watchdog } from './watchdog.js';

/**
 * V8's gc() without --expose-gc on the command line (jest and `node --import tsx` do not pass it): the flag is set
 * at run time and a fresh context picks it up. Undefined if that stops working; cases are then measured without it.
 * Looked up only when a case leaves a large heap, so a sample that never does changes no V8 flag.
 */
function findGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
let gc: (() => void) | undefined | null = null;

/**
 * Garbage a large case left is collected before the next one starts, or it would count as the next case's memory
 * (V8 keeps freed heap resident until a full collection, and returns it only after a second one).
 */
async function settle(): Promise<void> {
  if ((currentRss() ?? 0) < SETTLE_ABOVE) return;
  if (gc === null) gc = findGc();
  if (!gc) return;
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
}
const SETTLE_ABOVE = 384 * 2 ** 20;

/** The memory budget for any process, this one included. */
export const MEMORY_BUDGET_BYTES = 2 ** 30;

export interface LoopOptions {
  seed: number;
  /** Case numbers to run: `count` cases from `from` (default 0). */
  count: number;
  from?: number;
  /** A folder for the files readIdx reads. */
  tmp: string;
  watchdog?: Watchdog;
  /** Called before each case is generated (--verbose): the last one printed is the culprit if the process dies. */
  onCase?: (parser: Parser, index: number) => void;
  /** Called with each finding as it happens, so a long run shows them before it ends. */
  onFinding?: (line: string) => void;
}

export interface LoopResult extends ParserStats {
  /** The fuzzing process's peak RSS over the whole loop, generation included. */
  processPeak?: number;
}

export async function fuzzParser(parser: Parser, o: LoopOptions): Promise<LoopResult> {
  const stats: LoopResult = newStats(parser);
  const reading = () => {
    const peak = peakRss();
    if (peak !== undefined) stats.processPeak = Math.max(stats.processPeak ?? 0, peak);
    return peak;
  };
  // Without a reset (no clear_refs), a case's peak is the process's peak so far: only the first case to pass the
  // budget can be blamed for it.
  let blamed = false;
  for (let index = o.from ?? 0; index < (o.from ?? 0) + o.count; index++) {
    o.onCase?.(parser, index);
    let made;
    try {
      made = makeCase(parser, o.seed, index);
    } catch (e) {
      if (!(e instanceof MutatorError)) throw e;
      stats.mutatorErrors++;
      continue;
    }
    reading();
    await settle();
    const reset = resetPeakRss();
    o.watchdog?.begin(parser, index);
    const r = await execute(made, o.tmp);
    o.watchdog?.end();
    r.peakRss = reading();
    if (r.peakRss !== undefined && r.peakRss > MEMORY_BUDGET_BYTES && (reset || !blamed)) {
      blamed = true;
      const over = `its peak RSS was ${mib(r.peakRss)}, over the 1 GiB budget`;
      r.message = r.outcome === 'finding' ? `${r.message}; ${over}` : `${over} (it ended ${r.outcome})`;
      r.outcome = 'finding';
    }
    const before = stats.findings.length;
    record(stats, withDecodes(made), r);
    if (stats.findings.length > before && o.onFinding) o.onFinding(describeFinding(stats.findings[before]));
  }
  return stats;
}
