// The guarded server's telemetry: one JSON line per input (time, model, input summary, prediction, detector flag;
// raw values only when the policy allows), appended to size-rotated files that the monitor's activity reads back.
// The format lives here so the writer (serve/) and the reader (activities/) cannot disagree.
import { mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRegular } from '../io/regular-file.js';
import type { InputSummary } from './stats.js';

export interface TelemetryRecord extends InputSummary {
  /** Milliseconds since the epoch. */
  t: number;
  /** SHA-256 (hex) of the model that answered. */
  model: string;
  /** The detector's score and whether it flagged the input (absent without a detector). */
  score?: number;
  flag?: boolean;
  /** The input itself, only where monitor.telemetry.rawInputs allows. */
  x?: number[];
}

export interface TelemetryLimits {
  maxFileBytes: number;
  files: number;
}

/** A line longer than this is not a record the server wrote (784 raw values fit many times over). */
const MAX_LINE = 256 * 1024;
const FLUSH_MS = 200;

/** Appends records to <dir>/<prefix>.jsonl, rotating to <prefix>.1.jsonl … at maxFileBytes and keeping `files`. */
export class TelemetryWriter {
  private lines: string[] = [];
  private bytes = 0;
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly path: string;

  constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly limits: TelemetryLimits,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.path = join(dir, `${prefix}.jsonl`);
    try {
      this.bytes = statSync(this.path).size;
    } catch {
      this.bytes = 0;
    }
    // Requests never wait for the disk: lines are batched and written in the background.
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  append(records: TelemetryRecord[]): void {
    for (const r of records) this.lines.push(JSON.stringify(r));
  }

  /** Writes what is buffered; resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.lines.length === 0) return this.writing;
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    this.writing = this.writing.then(async () => {
      if (this.bytes > 0 && this.bytes + text.length > this.limits.maxFileBytes) this.rotate();
      await appendFile(this.path, text, { mode: 0o600 });
      this.bytes += Buffer.byteLength(text);
    });
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private rotate(): void {
    const name = (k: number) => join(this.dir, k === 0 ? `${this.prefix}.jsonl` : `${this.prefix}.${k}.jsonl`);
    try {
      unlinkSync(name(this.limits.files - 1));
    } catch {
      // nothing to drop yet
    }
    for (let k = this.limits.files - 2; k >= 0; k--) {
      try {
        renameSync(name(k), name(k + 1));
      } catch {
        // a gap in the numbering: fine
      }
    }
    this.bytes = 0;
  }
}

export interface WindowRecords {
  records: TelemetryRecord[];
  /** Lines that were not records (cut short, edited, or foreign): counted, never trusted. */
  malformed: number;
}

/**
 * Records of one model in [since, until) from every telemetry file in dir modified since the window began. Files
 * are read as regular files within the limit, lines within MAX_LINE, and every field is type-checked.
 */
export async function readWindow(
  dir: string,
  o: { model: string; since: number; until: number; maxFileBytes: number; maxFiles?: number },
): Promise<WindowRecords> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
  } catch {
    return { records: [], malformed: 0 };
  }
  const out: WindowRecords = { records: [], malformed: 0 };
  const recent = names
    .map((n) => ({ n, mtime: mtimeOf(join(dir, n)) }))
    .filter((f) => f.mtime >= o.since)
    .slice(0, o.maxFiles ?? 64);
  for (const f of recent) {
    const text = (await readRegular(join(dir, f.n), o.maxFileBytes + MAX_LINE)).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      const r = line.length <= MAX_LINE ? parseRecord(line) : undefined;
      if (!r) out.malformed++;
      else if (r.model === o.model && r.t >= o.since && r.t < o.until) out.records.push(r);
    }
  }
  return out;
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -Infinity;
  }
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function parseRecord(line: string): TelemetryRecord | undefined {
  let r: Partial<TelemetryRecord>;
  try {
    r = JSON.parse(line) as Partial<TelemetryRecord>;
  } catch {
    return undefined;
  }
  if (!r || typeof r !== 'object' || !finite(r.t) || typeof r.model !== 'string') return undefined;
  if (!finite(r.mean) || !finite(r.std) || !finite(r.conf) || !Number.isInteger(r.cls) || (r.cls as number) < 0)
    return undefined;
  if (r.flag !== undefined && typeof r.flag !== 'boolean') return undefined;
  return {
    t: r.t,
    model: r.model,
    mean: r.mean,
    std: r.std,
    cls: r.cls!,
    conf: r.conf,
    ...(r.flag ? { flag: true } : {}),
  };
}
