// Things that may happen once: OIDC token IDs a worker accepted, console sessions signed out, Slack request
// signatures seen. A stolen or logged token or request must not be replayable while it is still valid, so each key
// may be claimed once. The store is a directory of files so that several processes sharing one volume (workers, or
// two consoles) agree on what was used, and so the record survives a restart: an in-memory set would let a token be
// replayed against another process or after a redeploy.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface JtiStore {
  /** True the first time a key is claimed, false every time after. expSeconds: when the record may be forgotten. */
  claim(jti: string, expSeconds: number): Promise<boolean>;
  /** Whether the key was claimed (and not yet swept). */
  has(jti: string): Promise<boolean>;
}

/** Records are kept this long after their token expired, so clock skew between workers cannot reopen a replay. */
const KEEP_AFTER_EXP_S = 3600;
/** Sweeping reads the whole directory: do it rarely. */
const SWEEP_EVERY_MS = 10 * 60_000;
/**
 * A record with no readable exp (a worker died between creating and writing it) is removed once it is this old by
 * mtime. The verifier refuses tokens issued more than an hour ago, so a day is far past any possible replay.
 */
const UNREADABLE_MAX_AGE_MS = 24 * 3600_000;

export function fileJtiStore(dir: string): JtiStore {
  let ready: Promise<unknown> | undefined;
  let lastSweep = 0;

  async function sweep(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(dir)) {
      // Only our own records (64 hex characters); anything else in the directory is not ours to delete.
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const path = join(dir, name);
      try {
        const exp = Number((await readFile(path, 'utf8')).trim());
        const stale =
          Number.isFinite(exp) && exp > 0
            ? exp * 1000 < now - KEEP_AFTER_EXP_S * 1000
            : (await stat(path)).mtimeMs < now - UNREADABLE_MAX_AGE_MS;
        if (stale) await unlink(path);
      } catch {
        // Another worker may have swept the same file first; best effort.
      }
    }
  }

  const pathOf = (key: string) => join(dir, createHash('sha256').update(key).digest('hex'));
  return {
    async has(jti) {
      try {
        await stat(pathOf(jti));
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw e;
      }
    },
    async claim(jti, expSeconds) {
      // Reset a failed mkdir so a transient error does not poison the store for the life of the process.
      ready ??= mkdir(dir, { recursive: true }).catch((e: unknown) => {
        ready = undefined;
        throw e;
      });
      await ready;
      // Hashing the ID gives a fixed-length, path-safe file name whatever the token carried (no "../", no NUL).
      const path = pathOf(jti);
      let claimed: boolean;
      try {
        // 'wx' is O_CREAT|O_EXCL: atomic on one filesystem, so of two racing workers exactly one wins.
        await writeFile(path, String(expSeconds), { flag: 'wx' });
        claimed = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        claimed = false;
      }
      if (Date.now() - lastSweep >= SWEEP_EVERY_MS) {
        lastSweep = Date.now();
        // In the background and never awaited: cleaning up must not slow down or fail a claim.
        void sweep().catch(() => undefined);
      }
      return claimed;
    },
  };
}
