// The monitor's telemetry files as an attacker who can write to their folder would leave them: planted FIFOs,
// symlinks and oversized files are counted and skipped (never fatal to the monitor), foreign names are not read,
// and the server's writer never makes a file the reader would refuse, even for one huge batch.
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TelemetryWriter, readWindow, type TelemetryRecord } from '../../engine/monitor/telemetry.js';

const rec = (t: number, extra: Partial<TelemetryRecord> = {}): TelemetryRecord => ({
  t,
  model: 'm',
  mean: 0.3,
  std: 0.2,
  cls: 1,
  conf: 0.9,
  ...extra,
});
const line = (r: TelemetryRecord) => `${JSON.stringify(r)}\n`;

describe('reading a window of telemetry', () => {
  test('planted files are counted and skipped; foreign names, other models and other times are left out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secmlops-telemetry-'));
    const since = Date.now() - 10_000;
    await writeFile(
      join(dir, 'serve-1.jsonl'),
      [rec(since + 1), rec(since + 2, { model: 'other' })].map(line).join(''),
    );
    await writeFile(join(dir, 'serve-2.jsonl'), line(rec(since - 5)) + 'not json\n' + line(rec(since + 3)) + '{"t":');
    await writeFile(join(dir, 'notes.jsonl'), line(rec(since + 4)));
    execFileSync('mkfifo', [join(dir, 'serve-fifo.jsonl')]);
    await symlink('/etc/passwd', join(dir, 'serve-link.jsonl'));
    await writeFile(join(dir, 'serve-big.jsonl'), Buffer.alloc(3 * 1024 * 1024, 0x61));
    const w = await readWindow(dir, { model: 'm', since, until: since + 1000, maxFileBytes: 1024 * 1024 });
    expect(w.records.map((r) => r.t).sort()).toEqual([since + 1, since + 3]);
    expect(w.otherModels).toBe(1);
    // The line cut at the end is the writer's next append, not counted; "not json" is.
    expect(w.malformed).toBe(1);
    expect(w.unreadable).toBe(3);
  });

  test('a missing folder is an empty window, not an error', async () => {
    const w = await readWindow('/nonexistent/secmlops', { model: 'm', since: 0, until: 1, maxFileBytes: 1024 });
    expect(w).toEqual({ records: [], malformed: 0, unreadable: 0, otherModels: 0 });
  });
});

describe('writing telemetry', () => {
  test('one batch larger than the file limit is split across rotated files, each within the limit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secmlops-telemetry-'));
    const limit = 64 * 1024;
    const writer = new TelemetryWriter(dir, 'serve-x', { maxFileBytes: limit, files: 100 });
    // Raw inputs make each record about 8 KB: 40 of them are five times the limit.
    const x = Array.from({ length: 784 }, (_, i) => i / 784);
    writer.append(Array.from({ length: 40 }, (_, i) => rec(Date.now() - 1000 + i, { x })));
    await writer.close();
    const files = await readdir(dir);
    expect(files.length).toBeGreaterThan(4);
    for (const f of files) expect((await stat(join(dir, f))).size).toBeLessThanOrEqual(limit);
    const w = await readWindow(dir, { model: 'm', since: Date.now() - 5000, until: Date.now(), maxFileBytes: limit });
    expect(w.records).toHaveLength(40);
    expect(w.unreadable).toBe(0);
  });
});
