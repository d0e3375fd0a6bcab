// Replays every history in a folder against a workflow bundle; prints one JSON line with the failures.
// Runs outside jest: protobufjs's JSON support breaks inside jest's module registry.
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

Runtime.install({ logger: new DefaultLogger('ERROR') });
const [dir, bundlePath] = process.argv.slice(2);
const ids = JSON.parse(readFileSync(join(dir, 'workflow-ids.json'), 'utf8')) as Record<string, string>;
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json');
const histories = files.map((f) => ({
  workflowId: ids[f] ?? f,
  history: historyFromJSON(JSON.parse(readFileSync(join(dir, f), 'utf8'))),
}));
const failures: string[] = [];
let replayed = 0;
for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: bundlePath } }, histories)) {
  replayed++;
  if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
}
console.log(JSON.stringify({ replayed, failures }));
