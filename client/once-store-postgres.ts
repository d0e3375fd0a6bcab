// The once-store for processes on several hosts: a table in Postgres (the compose stack's, or any other). The
// insert is atomic, so of two racing claims exactly one wins, whichever console or worker made them.
import pg from 'pg';
import { KEEP_AFTER_EXP_S, SWEEP_EVERY_MS, keyDigest, storedExp, type JtiStore } from './once-record.js';

/** A claim that cannot reach the database within this fails, and so does the request that needed it. */
const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 5000;

/** The URL without its password, for error messages. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

export function postgresOnceStore(url: string, what = 'once-store'): JtiStore {
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    // Idle connections must not keep a CLI or test process alive.
    allowExitOnIdle: true,
  });
  // An idle connection the server drops must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  let ready: Promise<unknown> | undefined;
  let lastSweep = 0;

  async function query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    // Reset a failed setup so a database that was down at first use is tried again on the next claim.
    ready ??= pool
      .query('CREATE TABLE IF NOT EXISTS secmlops_once_keys (key TEXT PRIMARY KEY, exp BIGINT NOT NULL)')
      .catch((e: unknown) => {
        ready = undefined;
        throw e;
      });
    try {
      await ready;
      return await pool.query<R>(text, values);
    } catch (e) {
      throw new Error(`${what}: the Postgres store ${redacted(url)} failed: ${(e as Error).message}`);
    }
  }

  return {
    async has(jti) {
      const r = await query('SELECT 1 FROM secmlops_once_keys WHERE key = $1', [keyDigest(jti)]);
      return r.rowCount === 1;
    },
    async claim(jti, expSeconds) {
      const r = await query('INSERT INTO secmlops_once_keys (key, exp) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
        keyDigest(jti),
        storedExp(expSeconds),
      ]);
      if (Date.now() - lastSweep >= SWEEP_EVERY_MS) {
        lastSweep = Date.now();
        // In the background and never awaited: cleaning up must not slow down or fail a claim.
        void query('DELETE FROM secmlops_once_keys WHERE exp < $1', [
          Math.floor(Date.now() / 1000) - KEEP_AFTER_EXP_S,
        ]).catch(() => undefined);
      }
      return r.rowCount === 1;
    },
    async close() {
      await pool.end();
    },
  };
}
