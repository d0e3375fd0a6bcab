// The committed experiment grid on its own dev server and workers (one process), the results written to
// experiments/<name>. Run with `npm run bench:experiment` (add `-- --quick` for the seconds-long variant).
import { experimentCommand } from '../cli/experiment-command.js';
import { startBenchStack } from './bench-stack.js';

const quick = process.argv.includes('--quick');
const file = process.argv.find((a) => a.endsWith('.yaml')) ?? 'examples/fashion-mnist/experiment.yaml';
const stack = await startBenchStack();
try {
  await experimentCommand(async () => stack.client, file, { quick });
} finally {
  await stack.stop();
}
