// Things that may happen once: OIDC token IDs a worker accepted, console sessions signed out, Slack request
// signatures seen. A stolen or logged token or request must not be replayable while it is still valid, so each key
// may be claimed once. The record lives in a database, never in process memory: an in-memory set would let a token
// be replayed after a restart or against another process. SQLite (one file, shared by the processes of one host) is
// the default; Postgres (`postgres://…`) serves processes on several hosts.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { postgresOnceStore } from './once-store-postgres.js';
import { sqliteOnceStore } from './once-store-sqlite.js';
import type { JtiStore } from './once-record.js';

export type { JtiStore } from './once-record.js';

/** The file a SQLite store opens for this setting: a directory (e.g. a mounted volume) holds `state.sqlite`. */
export function sqlitePathFor(spec: string): string {
  const isDir = spec.endsWith('/') || (existsSync(spec) && statSync(spec).isDirectory());
  return isDir ? join(spec, 'state.sqlite') : spec;
}

/**
 * The store a setting names: `postgres://` or `postgresql://` URLs open Postgres; anything else is a SQLite file
 * (or a directory that holds one). The `what` names the setting in errors.
 */
export function openOnceStore(spec: string, what: string): JtiStore {
  if (!spec.trim()) throw new Error(`${what} is empty: give a SQLite file, a directory, or a postgres:// URL`);
  if (/^postgres(ql)?:\/\//i.test(spec)) return postgresOnceStore(spec, what);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new Error(`${what}: ${spec.split('://')[0]}:// is not a store; give a SQLite file path or a postgres:// URL`);
  }
  return sqliteOnceStore(sqlitePathFor(spec), what);
}
