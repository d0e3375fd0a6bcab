// Temporal's dev server, through @temporalio/testing so the SDK's own download stays the last fallback.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureTemporalCli } from './temporal-cli.js';

export interface DevServerOptions {
  dbFilename?: string;
  port?: number;
  uiPort?: number;
  log?: (line: string) => void;
}

/**
 * Payloads anyone who reaches the namespace can write (Signal and Update arguments, workflow inputs) are capped
 * well below Temporal's 2 MiB default, so a client cannot bloat a pipeline's history towards its size limit with a
 * few calls. Production servers need the same dynamic config (README, Security model).
 */
export const BLOB_SIZE_LIMITS = { error: 512 * 1024, warn: 256 * 1024 };

export async function startDevServer(opts: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  const { path, attempts } = await ensureTemporalCli({ log: opts.log });
  const server = {
    dbFilename: opts.dbFilename,
    port: opts.port,
    ui: opts.uiPort !== undefined,
    uiPort: opts.uiPort,
    log: { format: 'pretty', level: 'error' },
    extraArgs: [
      '--dynamic-config-value',
      `limit.blobSize.error=${BLOB_SIZE_LIMITS.error}`,
      '--dynamic-config-value',
      `limit.blobSize.warn=${BLOB_SIZE_LIMITS.warn}`,
    ],
  };
  if (path)
    return TestWorkflowEnvironment.createLocal({ server: { ...server, executable: { type: 'existing-path', path } } });
  opts.log?.('Falling back to the Temporal SDK’s own download of the dev server…');
  try {
    return await TestWorkflowEnvironment.createLocal({
      server: { ...server, executable: { type: 'cached-download' } },
    });
  } catch (e) {
    const tried = [...attempts, { way: "the Temporal SDK's download", error: (e as Error).message.split('\n')[0] }];
    throw new Error(
      `could not find or install the Temporal CLI. Tried:\n${tried.map((a) => `  - ${a.way}: ${a.error}`).join('\n')}\nInstall it yourself and set TEMPORAL_CLI to its path.`,
    );
  }
}
