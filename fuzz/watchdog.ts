// A case that never returns cannot be timed from the thread it blocks (the parsers are synchronous), so a worker
// thread watches the clock: past the budget it prints the case (seed, parser, number) and kills the process, which
// then exits by SIGKILL, non-zero.
import { Worker } from 'node:worker_threads';

// Plain CommonJS: an eval'd worker gets no TypeScript loader. Slots: [0] running (0/1), [1] parser, [2] case.
const WATCHER = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const state = new Int32Array(workerData.state);
const started = new Float64Array(workerData.started);
setInterval(() => {
  if (Atomics.load(state, 0) !== 1 || Date.now() - started[0] < workerData.budgetMs) return;
  const parser = workerData.parsers[Atomics.load(state, 1)];
  const index = Atomics.load(state, 2);
  writeSync(2, 'FINDING ' + parser + ' seed ' + workerData.seed + ' case ' + index + ': still running after ' +
    workerData.budgetMs + ' ms (a hang); killing the fuzz process\\n' +
    '    reproduce: node --import tsx fuzz/run.ts --parser ' + parser + ' --seed ' + workerData.seed + ' --case ' + index + '\\n');
  process.kill(process.pid, 'SIGKILL');
}, 250);
`;

export interface Watchdog {
  begin(parser: string, index: number): void;
  end(): void;
  stop(): Promise<void>;
}

export function startWatchdog(seed: number, parsers: readonly string[], budgetMs: number): Watchdog {
  const state = new SharedArrayBuffer(12);
  const started = new SharedArrayBuffer(8);
  const slots = new Int32Array(state);
  const clock = new Float64Array(started);
  const worker = new Worker(WATCHER, { eval: true, workerData: { state, started, seed, parsers, budgetMs } });
  worker.unref();
  return {
    begin(parser, index) {
      clock[0] = Date.now();
      Atomics.store(slots, 1, parsers.indexOf(parser));
      Atomics.store(slots, 2, index);
      Atomics.store(slots, 0, 1);
    },
    end() {
      Atomics.store(slots, 0, 0);
    },
    async stop() {
      await worker.terminate();
    },
  };
}
