import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

// The gpu queue has activities only, by design; the SDK warns about that at every start.
const EXPECTED = [/^No workflows registered, not polling for workflow tasks/];

/** Installs a logger at `level` that drops warnings which are expected in this deployment. Once per process. */
export function installQuietLogger(level: LogLevel = 'WARN'): void {
  try {
    Runtime.install({
      logger: new DefaultLogger(level, (entry: LogEntry) => {
        if (EXPECTED.some((re) => re.test(entry.message))) return;
        const at = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
        console.error(
          `${at} [${entry.level}] ${entry.message}`,
          ...(entry.meta && Object.keys(entry.meta).length ? [entry.meta] : []),
        );
      }),
    });
  } catch {
    // A runtime already exists in this process (tests share one): keep it.
  }
}
