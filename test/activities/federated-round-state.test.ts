// A client's once-per-round claims: atomic across callers (the file system decides, not a read of the state), the
// same input again goes on, another is refused; and the noise seed is created once.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claim, createOnce, serialized } from '../../activities/federated-round-state.js';

describe('round claims', () => {
  test('of many claims at once for different inputs exactly one wins; a retry of the winner passes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secmlops-claim-'));
    const path = join(dir, 'round');
    const inputs = Array.from({ length: 20 }, (_v, i) => `digest-${i}`);
    const won = await Promise.all(inputs.map((d) => claim(path, 'reveal', d)));
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = inputs[won.indexOf(true)];
    expect(await claim(path, 'reveal', winner)).toBe(true);
    expect(
      await claim(
        path,
        'reveal',
        inputs.find((d) => d !== winner)!,
      ),
    ).toBe(false);
    // Another phase is claimed on its own; no temporary file is left behind.
    expect(await claim(path, 'mask', 'other')).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['round.mask.claim', 'round.reveal.claim']);
  });

  test('createOnce keeps the first content; serialized runs one call at a time per key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secmlops-once-'));
    const first = await createOnce(join(dir, 'seed'), Buffer.from('a'));
    const second = await createOnce(join(dir, 'seed'), Buffer.from('b'));
    expect([first.toString(), second.toString(), await readFile(join(dir, 'seed'), 'utf8')]).toEqual(['a', 'a', 'a']);
    let inside = 0;
    let most = 0;
    const work = async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 5));
      inside--;
    };
    await Promise.all(Array.from({ length: 5 }, () => serialized('k', work)));
    expect(most).toBe(1);
  });
});
