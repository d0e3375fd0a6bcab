// The one reader for files whose path someone else chose: FIFOs, devices, directories and oversized files are
// refused on the open descriptor, before a byte is read, and nothing blocks.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashRegular, readRegular, readRegularSync } from '../../engine/io/regular-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-regular-'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await writeFile(join(dir, 'ok'), 'hello');
  await symlink('/dev/zero', join(dir, 'zero-link'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('readRegular', () => {
  test.each([
    ['/dev/zero', 'a character device, not a regular file; refused'],
    ['fifo', 'a FIFO, not a regular file; refused'],
    ['.', 'a directory, not a regular file; refused'],
    ['zero-link', 'a character device, not a regular file; refused'],
    ['missing', 'cannot read it (ENOENT)'],
  ])('%s is refused at once: %s', async (name, why) => {
    const path = name.startsWith('/') ? name : join(dir, name);
    await expect(readRegular(path, 4096)).rejects.toThrow(`${path}: ${why}`);
    expect(() => readRegularSync(path, 4096)).toThrow(`${path}: ${why}`);
    await expect(hashRegular(path)).rejects.toThrow(`${path}: ${why}`);
  });

  test('a file over the limit is refused before it is read', async () => {
    await expect(readRegular(join(dir, 'ok'), 4)).rejects.toThrow('5 bytes, over the 4-byte limit');
    expect(() => readRegularSync(join(dir, 'ok'), 4)).toThrow('5 bytes, over the 4-byte limit');
  });

  test('reads and hashes a regular file', async () => {
    expect((await readRegular(join(dir, 'ok'), 5)).toString()).toBe('hello');
    expect(readRegularSync(join(dir, 'ok'), 5).toString()).toBe('hello');
    expect(await hashRegular(join(dir, 'ok'))).toEqual({
      sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
      bytes: 5,
    });
  });
});
