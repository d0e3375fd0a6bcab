// Content-addressed artifacts: stored by SHA-256 and checked against it on every read.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRegular } from './regular-file.js';

/** The largest artifact: a sanitised dataset split, a model or a checkpoint stays far below it. */
const MAX_ARTIFACT_BYTES = 4 * 1024 ** 3;

export class ArtifactStore {
  constructor(readonly root: string) {}

  pathOf(digest: string): string {
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`"${digest}" is not a SHA-256 digest`);
    return join(this.root, 'sha256', digest.slice(0, 2), digest);
  }

  async put(bytes: Uint8Array): Promise<{ ref: string; digest: string; path: string }> {
    const digest = createHash('sha256').update(bytes).digest('hex');
    const path = this.pathOf(digest);
    await mkdir(join(this.root, 'sha256', digest.slice(0, 2)), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    return { ref: `sha256:${digest}`, digest, path };
  }

  /**
   * Reads an artifact by `sha256:<hex>` or bare digest, at most `maxBytes`; a file whose bytes no longer match is
   * refused.
   */
  async get(ref: string, maxBytes = MAX_ARTIFACT_BYTES): Promise<Buffer> {
    const digest = ref.replace(/^sha256:/, '');
    const path = this.pathOf(digest);
    // Opened without blocking and refused unless a regular file: a FIFO or /dev/zero planted in the store fails.
    const bytes = await readRegular(path, maxBytes);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== digest) throw new Error(`artifact ${path} is corrupt or tampered: its SHA-256 is ${actual}`);
    return bytes;
  }
}
