// A real Postgres server for tests of the Postgres once-store: a throwaway cluster in a temporary folder, on a free
// port of 127.0.0.1, from Debian's postgresql package (`.ci/run` installs it). Postgres refuses to run as root, so
// under root the cluster belongs to the `postgres` user the package creates.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface Postgres {
  /** postgres://secmlops:…@127.0.0.1:PORT/secmlops */
  url: string;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no Postgres under ${root}: apt-get install postgresql (.ci/run does)`);
  return join(root, newest, 'bin');
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  const dir = await mkdtemp(join(tmpdir(), 'secmlops-pg-'));
  // Postgres refuses root: under root, initdb and the server run as the package's user (spawned as that user
  // directly, not through runuser, so signals reach the server itself).
  const as =
    process.getuid?.() === 0
      ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) }
      : {};
  if (as.uid !== undefined) chownSync(dir, as.uid, as.gid);
  const data = join(dir, 'data');
  const password = 'test-only-password';
  const pwfile = join(dir, 'pw');
  await writeFile(pwfile, password, { mode: 0o600 });
  if (as.uid !== undefined) chownSync(pwfile, as.uid, as.gid);
  const init = ['-D', data, '-U', 'secmlops', '--pwfile', pwfile, '-A', 'scram-sha-256', '--no-sync', '-E', 'UTF8'];
  execFileSync(join(bin, 'initdb'), init, { stdio: 'pipe', cwd: dir, ...as });
  const port = await freePort();
  const server = ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-F'];
  const child: ChildProcess = spawn(join(bin, 'postgres'), server, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dir,
    ...as,
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const admin = `postgres://secmlops:${password}@127.0.0.1:${port}/postgres`;
  const until = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: admin });
    try {
      await c.connect();
      await c.query('CREATE DATABASE secmlops');
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > until) {
        child.kill('SIGKILL');
        throw new Error(`Postgres did not start: ${(e as Error).message}\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: `postgres://secmlops:${password}@127.0.0.1:${port}/secmlops`,
    async stop() {
      // SIGINT is Postgres's fast shutdown; runuser passes it on.
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
