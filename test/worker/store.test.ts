import { describe, expect, test } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalArtifactStore } from '../../activities/store.js';

describe('artifact store', () => {
  test('stores by SHA-256 and refuses a tampered artifact on read', async () => {
    const store = new LocalArtifactStore(await mkdtemp(join(tmpdir(), 'store-')));
    const { ref, path } = await store.put(Buffer.from('hello'));
    expect(ref).toBe('sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect((await store.get(ref)).toString()).toBe('hello');
    await writeFile(path, 'hellO');
    await expect(store.get(ref)).rejects.toThrow(`artifact ${path} is corrupt or tampered`);
    await expect(store.get('sha256:../../etc/passwd')).rejects.toThrow('is not a SHA-256 digest');
  });
});
