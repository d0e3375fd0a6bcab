// The committed experiment grid on its own dev server and workers (one process), the results written to
// experiments/<name> (or `--out DIR`). Run with `npm run bench:experiment` (add `-- --quick` for the seconds-long
// variant); `--resume` keeps the cells an earlier run saved in the results folder.
import { experimentCommand } from '../cli/experiment-command.js';
import { startBenchStack } from './bench-stack.js';

const quick = process.argv.includes('--quick');
const file = process.argv.find((a) => a.endsWith('.yaml')) ?? 'examples/fashion-mnist/experiment.yaml';
const outAt = process.argv.indexOf('--out');
const out = outAt > 0 ? process.argv[outAt + 1] : undefined;
const resume = process.argv.includes('--resume');
const stack = await startBenchStack();
try {
  await experimentCommand(async () => stack.client, file, { quick, out, resume });
} finally {
  await stack.stop();
}
