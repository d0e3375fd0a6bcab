// The default once-store: one SQLite file. Processes on one host that open the same file agree (SQLite's locks make
// the insert atomic, so of two racing claims exactly one wins), and the record survives restarts.
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { KEEP_AFTER_EXP_S, SWEEP_EVERY_MS, keyDigest, storedExp, type JtiStore } from './once-record.js';

/** How long a claim waits for another process's write lock before it fails (and the request is refused). */
const BUSY_TIMEOUT_MS = 5000;

export function sqliteOnceStore(path: string, what = 'once-store'): JtiStore {
  let db: Database.Database;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    // Only this user may rewrite the record: deleting a row would reopen a replay.
    chmodSync(path, 0o600);
    // WAL lets readers (has) go on while another process writes; the journal stays beside the file.
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS once_keys (key TEXT PRIMARY KEY, exp INTEGER NOT NULL) WITHOUT ROWID');
  } catch (e) {
    throw new Error(`${what}: cannot open the SQLite store ${path}: ${(e as Error).message}`);
  }
  const insert = db.prepare<[string, number]>('INSERT OR IGNORE INTO once_keys (key, exp) VALUES (?, ?)');
  const select = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM once_keys WHERE key = ?');
  const sweep = db.prepare<[number]>('DELETE FROM once_keys WHERE exp < ?');
  let lastSweep = 0;
  return {
    // async, so a failure (a locked or broken file) is a rejected promise, never a throw at the call.
    async has(jti) {
      return select.get(keyDigest(jti)) !== undefined;
    },
    async claim(jti, expSeconds) {
      const claimed = insert.run(keyDigest(jti), storedExp(expSeconds)).changes === 1;
      if (Date.now() - lastSweep >= SWEEP_EVERY_MS) {
        lastSweep = Date.now();
        try {
          sweep.run(Math.floor(Date.now() / 1000) - KEEP_AFTER_EXP_S);
        } catch {
          // Cleaning up must not fail a claim (another process may hold the lock); the next sweep catches up.
        }
      }
      return claimed;
    },
    async close() {
      db.close();
    },
  };
}
