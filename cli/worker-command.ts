import { NativeConnection } from '@temporalio/worker';
import { installQuietLogger } from '../worker/logger.js';
import { homePaths } from '../worker/paths.js';
import { createWorkers, type Queue } from '../worker/workers.js';
import { tracingFromEnv } from '../worker/tracing.js';
import type { ConnectionConfig } from '../worker/connection.js';
import { CLIENT_ID } from '../policy/parse-federated.js';
import { UsageError } from './usage-error.js';

/** Long-running workers for compose deployments and crash tests; SIGINT or SIGTERM drains them gracefully. */
export async function runWorkers(queueList: string, config: ConnectionConfig): Promise<void> {
  const queues = queueList
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  // Anything but cpu and gpu is a federated client's queue, named by its id.
  for (const q of queues)
    if (q !== 'cpu' && q !== 'gpu' && !CLIENT_ID.test(q))
      throw new UsageError(`unknown queue "${q}"; expected cpu, gpu or a federated client's id such as client-1`);
  const metrics = process.env.SECMLOPS_METRICS_ADDRESS;
  installQuietLogger('INFO', metrics);
  const paths = homePaths();
  // OTEL_* variables: traces of workflows and activities (off unless asked for).
  const tracing = tracingFromEnv();
  const connection = await NativeConnection.connect({
    address: config.connectionOptions.address,
    tls: config.connectionOptions.tls,
    apiKey: config.connectionOptions.apiKey as string | undefined,
    metadata: config.connectionOptions.metadata,
  });
  const workers = await createWorkers({
    connection,
    namespace: config.namespace,
    queues: queues.map((q): Queue => (q === 'cpu' || q === 'gpu' ? q : `client:${q}`)),
    artifactsDir: paths.artifacts,
    releaseKeyPath: paths.releaseKey,
    tracing,
  });
  console.log(
    `secmlops worker: polling ${queues.join(', ')} on ${config.connectionOptions.address} (${config.namespace})` +
      (metrics ? `; Prometheus metrics on http://${metrics}/metrics` : '') +
      (tracing ? '; OpenTelemetry traces on' : ''),
  );
  // The SDK installs SIGINT/SIGTERM handlers that shut the workers down gracefully.
  await Promise.all(workers.map((w) => w.run()));
  await tracing?.shutdown();
  await connection.close();
}
