// With SECMLOPS_RECORD_HISTORIES=1, tests save the histories of their runs under test/histories/ for the replay test,
// in the Temporal CLI's JSON form (`temporal workflow show --output json`). Any other value is a prefix for the file
// names, which adds histories of today's code beside the older ones instead of replacing them.
import type { Client } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findTemporalCli } from '../../worker/temporal-cli.js';

export const HISTORIES_DIR = join('test', 'histories');
/** Replay needs each history's original workflow ID (children's IDs derive from it): file name → workflow ID. */
export const INDEX_FILE = join(HISTORIES_DIR, 'workflow-ids.json');

export async function recordHistories(client: Client, scenario: string, workflowIds: string[]): Promise<void> {
  const tag = process.env.SECMLOPS_RECORD_HISTORIES;
  if (!tag) return;
  const cli = findTemporalCli();
  if (!cli) throw new Error('recording histories needs the Temporal CLI');
  await mkdir(HISTORIES_DIR, { recursive: true });
  const address = (client.connection as unknown as { options: { address: string } }).options.address;
  for (const id of workflowIds) {
    const { stdout } = await promisify(execFile)(
      cli,
      ['workflow', 'show', '--workflow-id', id, '--address', address, '--output', 'json'],
      { maxBuffer: 64 << 20 },
    );
    const name = /\/(plan|data|train|evaluate|release)$/.exec(id)?.[1] ?? 'pipeline';
    const file = `${tag === '1' ? '' : `${tag}-`}${scenario}.${name}.json`;
    await writeFile(join(HISTORIES_DIR, file), stdout);
    const index = JSON.parse(await readFile(INDEX_FILE, 'utf8').catch(() => '{}')) as Record<string, string>;
    index[file] = id;
    await writeFile(INDEX_FILE, JSON.stringify(index, Object.keys(index).sort(), 2) + '\n');
  }
}
