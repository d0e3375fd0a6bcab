// What every once-store shares: the interface the console and workers use, how long records are kept, and how a
// key and its expiry are stored. Keys are stored as their SHA-256: the database then holds no usable token or
// signature, and every key has the same length whatever a request carried.
import { createHash } from 'node:crypto';

export interface JtiStore {
  /** True the first time a key is claimed, false every time after. expSeconds: when the record may be forgotten. */
  claim(jti: string, expSeconds: number): Promise<boolean>;
  /** Whether the key was claimed (and not yet swept). */
  has(jti: string): Promise<boolean>;
  /** Releases the connection (tests, shutdown). Claims after close fail. */
  close(): Promise<void>;
}

/** Records are kept this long after their token expired, so clock skew between processes cannot reopen a replay. */
export const KEEP_AFTER_EXP_S = 3600;
/** Sweeping scans the table: do it rarely. */
export const SWEEP_EVERY_MS = 10 * 60_000;

export const keyDigest = (key: string): string => createHash('sha256').update(key).digest('hex');

/** The exp a record is stored with: a finite whole number of seconds, so a hostile value cannot break the sweep. */
export function storedExp(expSeconds: number): number {
  if (!Number.isFinite(expSeconds)) throw new Error(`once-store: expiry ${String(expSeconds)} is not a number`);
  return Math.min(Math.max(Math.trunc(expSeconds), 0), Number.MAX_SAFE_INTEGER);
}
