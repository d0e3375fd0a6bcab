// With SECMLOPS_RECORD_HISTORIES=1, tests save the histories of their runs under test/histories/ for the replay test.
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const HISTORIES_DIR = join('test', 'histories');

export async function recordHistories(client: Client, scenario: string, workflowIds: string[]): Promise<void> {
  if (!process.env.SECMLOPS_RECORD_HISTORIES) return;
  await mkdir(HISTORIES_DIR, { recursive: true });
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    const name = id.endsWith('/plan') || id.endsWith('/data') || id.endsWith('/release') ? id.split('/').pop() : 'pipeline';
    await writeFile(join(HISTORIES_DIR, `${scenario}.${name}.json`), historyToJSON(history) + '\n');
  }
}
