import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

/** Seconds: 10 s, 1 min, 5 min, 15 min, 1 h, 4 h, 12 h, 1 day, 3 days, 1 week. */
const APPROVAL_BUCKETS = [10, 60, 300, 900, 3600, 14_400, 43_200, 86_400, 259_200, 604_800];

// The gpu queue has activities only, by design; the SDK warns about that at every start.
const EXPECTED = [/^No workflows registered, not polling for workflow tasks/];

/**
 * Installs a logger at `level` that drops warnings which are expected in this deployment, and with `metrics`
 * (host:port, from SECMLOPS_METRICS_ADDRESS) a Prometheus endpoint at /metrics: the SDK's own metrics (task
 * latencies, activity and workflow failures, pollers, slots) and the project's (engine images/s, engine jobs,
 * approval waiting time). Once per process.
 */
export function installQuietLogger(level: LogLevel = 'WARN', metrics?: string): void {
  try {
    Runtime.install({
      ...(metrics
        ? {
            telemetryOptions: {
              metrics: {
                prometheus: {
                  bindAddress: metrics,
                  countersTotalSuffix: true,
                  unitSuffix: true,
                  useSecondsForDurations: true,
                  // Approvals take minutes to days, not the default buckets' milliseconds to seconds.
                  histogramBucketOverrides: { secmlops_approval_wait: APPROVAL_BUCKETS },
                },
              },
            },
          }
        : {}),
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
