// Runs one fuzz case through its parser in this process and says how it ended. The contract under test: every input
// ends in the parser's own error type (OnnxError, DatasetError, PolicyError) or is accepted, within the time budget.
// Anything else is a finding.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatasetError, parseIdx, readIdx } from '../engine/data/idx.js';
import { inspectModel } from '../engine/inspect.js';
import { OnnxError, parseModel } from '../engine/onnx/model.js';
import { PolicyError, parsePolicyWithDigest } from '../policy/index.js';
import type { MadeCase, Parser } from './cases.js';
import { VALID_KEY } from './seeds.js';

/** The issue's budget: no case may take longer than this. */
export const CASE_BUDGET_MS = 20_000;

export type Outcome = 'accepted' | 'refused' | 'finding';

export interface CaseResult {
  outcome: Outcome;
  /** The refusal's message, or what the finding is. */
  message?: string;
  /** Milliseconds in the parser (for IDX, parseIdx and readIdx together). */
  ms: number;
  /** Peak resident memory while the case ran (bytes), where it could be measured. */
  peakRss?: number;
  /** The parser's typed error, when it refused. */
  error?: Error;
  /** Notes that are not findings: parseIdx and readIdx disagreeing, inspect failing on an accepted model. */
  notes: string[];
}

const TYPED: Record<Parser, new (...args: never[]) => Error> = {
  onnx: OnnxError,
  idx: DatasetError,
  policy: PolicyError,
};

/**
 * The part of a refusal that says what kind it is: the file name (everything up to the first ": "), quoted names and
 * numbers taken out. A PolicyError's kind is what it expected, without the path inside the policy.
 */
export function refusalKind(e: Error | string): string {
  const what =
    e instanceof PolicyError
      ? e.expected
      : (typeof e === 'string' ? e : e.message)
          .replace(/^[^:]*: /, '')
          // CLI messages: a policy path or a YAML position after the file name.
          .replace(/^(line \d+, column \d+|\(top level\)|[\w-]+[.[][^\s:]*): /, '');
  // ONNX refusals start with where the tensor sits, which varies more than what is wrong with it.
  return what
    .replace(/^(sparse initializer|initializer|attribute) .*? (has|declares|keeps|expands|holds) /, 'tensor … $2 ')
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '"…"')
    .replace(/\d[\d,._×xe+-]*/g, 'N')
    .split(/\s+/)
    .slice(0, 8)
    .join(' ')
    .replace(/[:;,(]$/, '');
}

/** How an unexpected exception is shown: its type, message and the first frame, which is usually the culprit. */
function describeUnexpected(e: unknown): string {
  if (!(e instanceof Error)) return `threw a non-Error: ${String(e)}`;
  const frame =
    e.stack
      ?.split('\n')
      .find((l) => l.trim().startsWith('at '))
      ?.trim() ?? '';
  return `${e.name}: ${e.message.slice(0, 300)} ${frame}`;
}

interface Ended {
  ok: boolean;
  typed?: Error;
  unexpected?: string;
}

async function ended(parser: Parser, run: () => unknown): Promise<Ended> {
  try {
    await run();
    return { ok: true };
  } catch (e) {
    if (e instanceof TYPED[parser]) return { ok: false, typed: e };
    return { ok: false, unexpected: describeUnexpected(e) };
  }
}

const text = new TextDecoder();
/** Key files a policy names are served from memory: the in-process target is the parser, not the file reader. */
const readKeyFile = (path: string) => (path.includes('junk') ? 'not a key\n' : `${VALID_KEY}\n`);

/**
 * Runs the case. `tmp` is a folder for the file readIdx reads (IDX cases go through both the in-memory parser and
 * the streaming reader, which must agree).
 */
export async function execute(c: MadeCase, tmp: string): Promise<CaseResult> {
  const notes: string[] = [];
  let ms = 0;
  const timed = async (run: () => unknown) => {
    const t0 = performance.now();
    const r = await ended(c.parser, run);
    ms += performance.now() - t0;
    return r;
  };
  let first: Ended;
  if (c.parser === 'onnx') {
    let model: ReturnType<typeof parseModel> | undefined;
    first = await timed(() => (model = parseModel(c.input, 'fuzz.onnx')));
    // `inspect` runs on what the parser accepted: a model it cannot summarize is worth knowing about.
    if (model) {
      try {
        inspectModel(model);
      } catch (e) {
        notes.push(`inspectModel failed on an accepted model: ${describeUnexpected(e)}`);
      }
    }
  } else if (c.parser === 'idx') {
    first = await timed(() => parseIdx(c.input, 'fuzz-idx'));
    const file = join(tmp, `fuzz.idx`);
    await writeFile(file, c.input);
    const streamed = await timed(() => readIdx(file));
    if (streamed.unexpected)
      first = first.unexpected ? first : { ok: false, unexpected: `readIdx: ${streamed.unexpected}` };
    else if (streamed.ok !== first.ok && !first.unexpected)
      notes.push(
        `parseIdx ${first.ok ? 'accepted' : `refused (${first.typed?.message})`} but readIdx ${streamed.ok ? 'accepted' : `refused (${streamed.typed?.message})`}`,
      );
  } else {
    first = await timed(() => parsePolicyWithDigest(text.decode(c.input), { file: 'fuzz.yaml', readKeyFile }));
  }
  if (first.unexpected)
    return { outcome: 'finding', message: `not a ${TYPED[c.parser].name}: ${first.unexpected}`, ms, notes };
  if (ms > CASE_BUDGET_MS)
    return {
      outcome: 'finding',
      message: `took ${Math.round(ms)} ms, over the ${CASE_BUDGET_MS} ms budget`,
      ms,
      notes,
    };
  if (first.ok) return { outcome: 'accepted', ms, notes };
  return { outcome: 'refused', message: first.typed!.message, error: first.typed, ms, notes };
}
