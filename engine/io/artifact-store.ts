// Content-addressed artifacts: stored by SHA-256 and checked against it on every read. The local folder is the
// default; an S3-compatible bucket (s3-artifact-store.ts) shares artifacts between hosts and keeps a local folder
// as its cache, because the engine's jobs read files.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRegular } from './regular-file.js';

/** The largest artifact: a sanitised dataset split, a model or a checkpoint stays far below it. */
export const MAX_ARTIFACT_BYTES = 4 * 1024 ** 3;

export interface StoredArtifact {
  /** `sha256:<hex>`. */
  ref: string;
  digest: string;
  /** A local file with the bytes (in the cache for a remote store). */
  path: string;
}

export interface ArtifactStore {
  /** Where the artifacts live, for messages: a folder or `s3://bucket/prefix`. */
  readonly location: string;
  put(bytes: Uint8Array): Promise<StoredArtifact>;
  /**
   * Reads an artifact by `sha256:<hex>` or bare digest, at most `maxBytes`; bytes that no longer match the digest
   * are refused.
   */
  get(ref: string, maxBytes?: number): Promise<Buffer>;
  /**
   * A local file holding the artifact, for the engine's jobs (they hash what they read against the digest). A remote
   * store downloads it into its cache first, checked.
   */
  localPath(digest: string): Promise<string>;
}

export function digestOf(ref: string): string {
  const digest = ref.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`"${ref}" is not a SHA-256 digest`);
  return digest;
}

export class LocalArtifactStore implements ArtifactStore {
  constructor(readonly root: string) {}

  get location(): string {
    return this.root;
  }

  pathOf(ref: string): string {
    const digest = digestOf(ref);
    return join(this.root, 'sha256', digest.slice(0, 2), digest);
  }

  async put(bytes: Uint8Array): Promise<StoredArtifact> {
    const digest = createHash('sha256').update(bytes).digest('hex');
    const path = this.pathOf(digest);
    await mkdir(join(this.root, 'sha256', digest.slice(0, 2)), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    return { ref: `sha256:${digest}`, digest, path };
  }

  async get(ref: string, maxBytes = MAX_ARTIFACT_BYTES): Promise<Buffer> {
    const digest = digestOf(ref);
    const path = this.pathOf(digest);
    // Opened without blocking and refused unless a regular file: a FIFO or /dev/zero planted in the store fails.
    const bytes = await readRegular(path, maxBytes);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== digest) throw new Error(`artifact ${path} is corrupt or tampered: its SHA-256 is ${actual}`);
    return bytes;
  }

  async localPath(digest: string): Promise<string> {
    return this.pathOf(digest);
  }
}
