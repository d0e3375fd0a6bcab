// The guarded server's telemetry: one JSON line per input (time, model, input summary, prediction, detector flag;
// raw values only when the policy allows), appended to size-rotated files that the monitor's activity reads back.
// The format lives here so the writer (serve/) and the reader (activities/) cannot disagree.
import { mkdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { appendFile, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openRegular } from '../io/regular-file.js';
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

  /** Writes what is buffered; resolves when it is on disk. No file grows past maxFileBytes (the reader's bound). */
  flush(): Promise<void> {
    if (this.lines.length === 0) return this.writing;
    const lines = this.lines;
    this.lines = [];
    this.writing = this.writing.then(async () => {
      let chunk: string[] = [];
      let size = 0;
      const write = async () => {
        if (!chunk.length) return;
        await appendFile(this.path, chunk.join(''), { mode: 0o600 });
        this.bytes += size;
        chunk = [];
        size = 0;
      };
      for (const line of lines) {
        const text = `${line}\n`;
        const bytes = Buffer.byteLength(text);
        if (bytes > MAX_LINE) continue;
        if (this.bytes + size + bytes > this.limits.maxFileBytes) {
          await write();
          if (this.bytes > 0) this.rotate();
        }
        chunk.push(text);
        size += bytes;
      }
      await write();
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
  /** Telemetry files that could not be read (not regular, over the limit, gone): counted, skipped. */
  unreadable: number;
  /** Records in the window from other models: traffic the monitor is not watching. */
  otherModels: number;
}

/** Only the guarded server's own files are read (serve-<id>.jsonl and their rotations). */
const NAME = /^serve-[A-Za-z0-9._-]{1,100}\.jsonl$/;
const MAX_NAMES = 10_000;
const MAX_FILES = 64;
const MAX_RECORDS = 1_000_000;

/**
 * Records of one model in [since, until) from the server's telemetry files modified since the window began, newest
 * first. Bounded: names, files, bytes per file and records per window; each file is read up to the size it had when
 * opened (the server keeps appending), and a file that cannot be read is counted and skipped, never fatal.
 */
export async function readWindow(
  dir: string,
  o: { model: string; since: number; until: number; maxFileBytes: number; maxFiles?: number },
): Promise<WindowRecords> {
  const out: WindowRecords = { records: [], malformed: 0, unreadable: 0, otherModels: 0 };
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => NAME.test(n)).slice(0, MAX_NAMES);
  } catch {
    return out;
  }
  const stamped = await Promise.all(names.map(async (n) => ({ n, ...(await statOf(join(dir, n))) })));
  // The server writes plain files: a symlink, FIFO or anything else planted under its names is not read.
  out.unreadable += stamped.filter((f) => f.mtime >= o.since && !f.regular).length;
  const recent = stamped
    .filter((f) => f.mtime >= o.since && f.regular)
    .sort((a, b) => b.mtime - a.mtime)
    .slice(0, o.maxFiles ?? MAX_FILES);
  for (const f of recent) {
    let text: string;
    try {
      text = await readPrefix(join(dir, f.n), o.maxFileBytes + MAX_LINE);
    } catch {
      out.unreadable++;
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      const r = line.length <= MAX_LINE ? parseRecord(line) : undefined;
      if (!r) out.malformed++;
      else if (r.t < o.since || r.t >= o.until) continue;
      else if (r.model !== o.model) out.otherModels++;
      else if (out.records.length < MAX_RECORDS) out.records.push(r);
    }
  }
  return out;
}

/** The file's bytes up to the size it had when opened: lines appended meanwhile belong to the next read. */
async function readPrefix(path: string, maxBytes: number): Promise<string> {
  const { handle, size } = await openRegular(path, maxBytes);
  try {
    const buf = Buffer.alloc(size);
    let n = 0;
    while (n < size) {
      const { bytesRead } = await handle.read(buf, n, size - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    // A line cut at the end is the writer's next append in progress, not a malformed record.
    const last = buf.lastIndexOf(0x0a, n - 1);
    return buf.toString('utf8', 0, last + 1);
  } finally {
    await handle.close();
  }
}

async function statOf(path: string): Promise<{ mtime: number; regular: boolean }> {
  try {
    const st = await lstat(path);
    return { mtime: st.mtimeMs, regular: st.isFile() };
  } catch {
    return { mtime: -Infinity, regular: false };
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
