// A model path that names /dev/zero (it never ends) or a FIFO (a read blocks until a writer comes): refused at once
// on the open descriptor, by the loader and by `secmlops inspect`, naming the path.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OnnxError, loadModel } from '../../engine/onnx/model.js';

let dir: string;
let fifo: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-model-kinds-'));
  fifo = join(dir, 'model.onnx');
  execFileSync('mkfifo', [fifo]);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('model files that are not files', () => {
  test.each([
    ['/dev/zero', 'a character device, not a regular file; refused'],
    ['the FIFO', 'a FIFO, not a regular file; refused'],
  ])(
    '%s is refused by the loader',
    async (name, why) => {
      const path = name === '/dev/zero' ? name : fifo;
      await expect(loadModel(path)).rejects.toThrow(OnnxError);
      await expect(loadModel(path)).rejects.toThrow(`${path}: ${why}`);
    },
    10_000,
  );

  test('and by secmlops inspect, which exits 1 with one line', async () => {
    await expect(
      promisify(execFile)(process.execPath, ['bin/secmlops.js', 'inspect', fifo], { timeout: 30_000 }),
    ).rejects.toMatchObject({ code: 1, stderr: `secmlops: error: ${fifo}: a FIFO, not a regular file; refused\n` });
  }, 40_000);
});
