// Committed histories of real runs must replay against today's workflow code: a change that breaks determinism
// for runs already waiting in production fails here. Re-record with `npm run record-histories` only on purpose.
import { describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { HISTORIES_DIR, INDEX_FILE } from '../helpers/histories.js';
import { readFileSync } from 'node:fs';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json') && !INDEX_FILE.endsWith(f));

describe('replay', () => {
  test('the committed histories cover the pipeline and every stage', () => {
    const kinds = new Set(files.map((f) => f.split('.')[1]));
    expect([...kinds].sort()).toEqual(['data', 'evaluate', 'pipeline', 'plan', 'release', 'train']);
    expect(files.length).toBeGreaterThanOrEqual(10);
    expect(Object.keys(JSON.parse(readFileSync(INDEX_FILE, 'utf8')) as Record<string, string>).sort()).toEqual(
      [...files].sort(),
    );
  });

  test('every committed history replays without a nondeterminism error', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      'test/helpers/replay-histories.ts',
      HISTORIES_DIR,
      process.env.SECMLOPS_TEST_BUNDLE!,
    ]);
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as { replayed: number; failures: string[] };
    expect(report).toEqual({ replayed: files.length, failures: [] });
  });
});
