// The once-stores behind single-use OIDC token IDs, console sign-outs and Slack replay protection, each against the
// real thing: SQLite files opened by separate processes, and a real Postgres server. A replay is refused only if
// every process agrees a key was used, after restarts too.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openOnceStore, type JtiStore } from '../../client/once-store.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

const run = promisify(execFile);
const nowS = () => Math.floor(Date.now() / 1000);
let dir: string;
let postgres: Postgres;
const opened: JtiStore[] = [];
const open = (spec: string) => {
  const s = openOnceStore(spec, 'TEST_STATE');
  opened.push(s);
  return s;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-once-'));
  postgres = await startPostgres();
});
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A fresh store setting per test: its own SQLite file, or its own Postgres database. */
async function fresh(kind: 'sqlite' | 'postgres', name: string): Promise<string> {
  if (kind === 'sqlite') return join(dir, name, 'state.sqlite');
  const c = new pg.Client(postgres.url);
  await c.connect();
  await c.query(`CREATE DATABASE ${name.replace(/\W/g, '_')}`);
  await c.end();
  return postgres.url.replace(/\/secmlops$/, `/${name.replace(/\W/g, '_')}`);
}

describe.each(['sqlite', 'postgres'] as const)('%s once-store', (kind) => {
  test('two open stores agree, and a new one (a restart) remembers', async () => {
    const spec = await fresh(kind, `${kind}_agree`);
    const a = open(spec);
    const b = open(spec);
    const exp = nowS() + 300;
    expect(await a.claim('run-1', exp)).toBe(true);
    expect(await b.claim('run-1', exp)).toBe(false);
    expect(await a.claim('run-1', exp)).toBe(false);
    expect(await b.has('run-1')).toBe(true);
    expect(await b.claim('run-2', exp)).toBe(true);
    await a.close();
    await b.close();
    const restarted = open(spec);
    expect(await restarted.claim('run-1', exp)).toBe(false);
    expect(await restarted.claim('run-2', exp)).toBe(false);
    expect(await restarted.has('run-3')).toBe(false);
    expect(await restarted.claim('run-3', exp)).toBe(true);
  });

  test('separate processes racing for the same keys: each key is won exactly once', async () => {
    const spec = await fresh(kind, `${kind}_race`);
    // Every process claims the same 200 keys, so each key is contested by all of them at once.
    const script = `
      import { openOnceStore } from ${JSON.stringify(resolve('client/once-store.ts'))};
      const s = openOnceStore(process.argv[1], 'RACE');
      const won = [];
      await Promise.all(Array.from({ length: 200 }, async (_, i) => {
        if (await s.claim('key-' + i, ${nowS() + 300})) won.push(i);
      }));
      await s.close();
      console.log(JSON.stringify(won));`;
    const racers = await Promise.all(
      [1, 2, 3].map(() =>
        run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, spec], { timeout: 60_000 }),
      ),
    );
    const wins = racers.flatMap((r) => JSON.parse(r.stdout) as number[]);
    expect(wins.sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  }, 90_000);

  test('stores only the SHA-256 of a key, so a hostile key is inert and the database holds no token', async () => {
    const spec = await fresh(kind, `${kind}_digest`);
    const s = open(spec);
    const hostile = "'); DROP TABLE once_keys; --\0../../escaped" + 'x'.repeat(100_000);
    expect(await s.claim(hostile, nowS() + 300)).toBe(true);
    expect(await s.claim(hostile, nowS() + 300)).toBe(false);
    const keys =
      kind === 'sqlite'
        ? new Database(spec, { readonly: true }).prepare('SELECT key FROM once_keys').pluck().all()
        : await (async () => {
            const c = new pg.Client(spec);
            await c.connect();
            const r = await c.query<{ key: string }>('SELECT key FROM secmlops_once_keys');
            await c.end();
            return r.rows.map((row) => row.key);
          })();
    expect(keys).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
  });

  test('refuses an expiry that is not a number instead of storing a record the sweep mishandles', async () => {
    const s = open(await fresh(kind, `${kind}_nan`));
    await expect(s.claim('k', Number.NaN)).rejects.toThrow('expiry NaN is not a number');
    await expect(s.claim('k', Number.POSITIVE_INFINITY)).rejects.toThrow('expiry Infinity is not a number');
    expect(await s.has('k')).toBe(false);
  });

  test('sweeps records more than an hour past their expiry on a new store first claim, and keeps the rest', async () => {
    const spec = await fresh(kind, `${kind}_sweep`);
    const first = open(spec);
    await first.claim('long-expired', nowS() - 7200);
    await first.claim('recently-expired', nowS() - 600);
    await first.claim('valid', nowS() + 600);
    await open(spec).claim('trigger', nowS() + 300);
    // Postgres sweeps in the background.
    for (let i = 0; i < 100 && (await first.has('long-expired')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await first.has('long-expired')).toBe(false);
    expect(await first.has('recently-expired')).toBe(true);
    expect(await first.has('valid')).toBe(true);
  });
});

describe('store settings', () => {
  test('a directory holds state.sqlite, created owner-only', async () => {
    const d = join(dir, 'volume');
    await mkdir(d);
    const s = open(d);
    expect(await s.claim('k', nowS() + 60)).toBe(true);
    expect((await stat(join(d, 'state.sqlite'))).mode & 0o777).toBe(0o600);
  });

  test.each([
    ['', 'TEST_STATE is empty: give a SQLite file, a directory, or a postgres:// URL'],
    ['redis://cache:6379', 'TEST_STATE: redis:// is not a store; give a SQLite file path or a postgres:// URL'],
    ['/dev/null/state.sqlite', 'TEST_STATE: cannot open the SQLite store /dev/null/state.sqlite:'],
  ])('%j is refused with a message naming the setting', (spec, message) => {
    expect(() => openOnceStore(spec, 'TEST_STATE')).toThrow(message);
  });

  test('a file that is not SQLite is refused when opened, not trusted as empty', async () => {
    const { writeFile } = await import('node:fs/promises');
    const f = join(dir, 'not-sqlite.sqlite');
    await writeFile(f, 'x'.repeat(4096));
    expect(() => openOnceStore(f, 'TEST_STATE')).toThrow(
      `TEST_STATE: cannot open the SQLite store ${f}: file is not a database`,
    );
  });

  test('an unreachable Postgres fails the claim (closed), naming the setting and hiding the password', async () => {
    const s = open('postgres://secmlops:hunter2@127.0.0.1:1/secmlops');
    const claim = s.claim('k', nowS() + 60);
    await expect(claim).rejects.toThrow(
      'TEST_STATE: the Postgres store postgres://secmlops:***@127.0.0.1:1/secmlops failed',
    );
    await expect(s.claim('k', nowS() + 60)).rejects.not.toThrow('hunter2');
  });
});
