import { NativeConnection } from '@temporalio/worker';
import { installQuietLogger } from '../worker/logger.js';
import { homePaths } from '../worker/paths.js';
import { createWorkers, type Queue } from '../worker/workers.js';
import type { ConnectionConfig } from '../worker/connection.js';

/** Long-running workers for compose deployments and crash tests; SIGINT or SIGTERM drains them gracefully. */
export async function runWorkers(queueList: string, config: ConnectionConfig): Promise<void> {
  const queues = queueList
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  for (const q of queues) if (q !== 'cpu' && q !== 'gpu') throw new Error(`unknown queue "${q}"; expected cpu or gpu`);
  installQuietLogger('INFO');
  const paths = homePaths();
  const connection = await NativeConnection.connect({
    address: config.connectionOptions.address,
    tls: config.connectionOptions.tls,
    apiKey: config.connectionOptions.apiKey as string | undefined,
    metadata: config.connectionOptions.metadata,
  });
  const workers = await createWorkers({
    connection,
    namespace: config.namespace,
    queues: queues as Queue[],
    artifactsDir: paths.artifacts,
    releaseKeyPath: paths.releaseKey,
  });
  console.log(
    `secmlops worker: polling ${queues.join(', ')} on ${config.connectionOptions.address} (${config.namespace})`,
  );
  // The SDK installs SIGINT/SIGTERM handlers that shut the workers down gracefully.
  await Promise.all(workers.map((w) => w.run()));
  await connection.close();
}
