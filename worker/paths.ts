import { join, resolve } from 'node:path';

/** The project-local state folder: dev server database, keys, artifacts, tools. SECMLOPS_HOME overrides it. */
export function secmlopsHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.SECMLOPS_HOME ?? '.secmlops');
}

export function homePaths(home = secmlopsHome()) {
  return {
    home,
    keys: join(home, 'keys'),
    artifacts: join(home, 'artifacts'),
    telemetry: process.env.SECMLOPS_TELEMETRY ?? join(home, 'telemetry'),
    db: join(home, 'temporal.db'),
    releaseKey: process.env.SECMLOPS_RELEASE_KEY ?? join(home, 'keys', 'release.key'),
  };
}
