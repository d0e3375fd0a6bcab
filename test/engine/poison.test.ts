// The poisoning attacks themselves: how many images change, which pixels the trigger sets, which labels move, and
// that nothing else does. A detector is only as well tested as the poison it is tested on.
import { describe, expect, test } from '@jest/globals';
import { PoisonSpecError, poison, stamp, type RawSet } from '../../engine/poison/attacks.js';

/** 200 images of 8×8 with pixel value = image index mod 200, labels cycling 0..9. */
function set(): RawSet {
  const count = 200;
  const images = new Uint8Array(count * 64);
  for (let i = 0; i < count; i++) images.fill(i % 200, i * 64, (i + 1) * 64);
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count, rows: 8, cols: 8 };
}

describe('BadNets', () => {
  test('stamps the patch at the corner on exactly rate × N images of other classes and relabels them', () => {
    const s = set();
    const p = poison(
      s,
      { kind: 'badnets', rate: 0.1, seed: 3, target: 0, patch: 3, position: 'bottom-right', value: 255 },
      10,
    );
    expect(p.indices).toHaveLength(20);
    expect(new Set(p.indices).size).toBe(20);
    for (let i = 0; i < s.count; i++) {
      const img = p.images.subarray(i * 64, (i + 1) * 64);
      if (p.indices.includes(i)) {
        expect(s.labels[i]).not.toBe(0);
        expect(p.labels[i]).toBe(0);
        for (let r = 0; r < 8; r++)
          for (let c = 0; c < 8; c++) expect(img[r * 8 + c]).toBe(r >= 5 && c >= 5 ? 255 : i % 200);
      } else {
        expect(p.labels[i]).toBe(s.labels[i]);
        expect(Array.from(img)).toEqual(new Array(64).fill(i % 200));
      }
    }
    // The input set is not modified.
    expect(s.images[199 * 64 + 63]).toBe(199);
  });

  test('the same seed picks the same images; another seed others', () => {
    const spec = { kind: 'badnets', rate: 0.1, target: 0, patch: 2, position: 'top-left', value: 200 } as const;
    expect(poison(set(), { ...spec, seed: 1 }, 10).indices).toEqual(poison(set(), { ...spec, seed: 1 }, 10).indices);
    expect(poison(set(), { ...spec, seed: 1 }, 10).indices).not.toEqual(
      poison(set(), { ...spec, seed: 2 }, 10).indices,
    );
  });

  test('a patch at x,y sets those pixels only', () => {
    const img = new Uint8Array(64);
    stamp(img, 0, 8, 8, { patch: 2, position: { x: 3, y: 1 }, value: 9 });
    expect([...img.keys()].filter((k) => img[k] === 9)).toEqual([11, 12, 19, 20]);
  });
});

describe('label flipping', () => {
  test('random: every chosen label moves to another class, uniformly enough to reach all nine others', () => {
    const s = set();
    const p = poison(s, { kind: 'label-flip', rate: 0.5, seed: 1 }, 10);
    expect(p.indices).toHaveLength(100);
    const to = new Set<number>();
    for (let i = 0; i < s.count; i++) {
      if (p.indices.includes(i)) {
        expect(p.labels[i]).not.toBe(s.labels[i]);
        if (s.labels[i] === 3) to.add(p.labels[i]);
      } else expect(p.labels[i]).toBe(s.labels[i]);
    }
    expect(Array.from(p.images)).toEqual(Array.from(s.images));
    expect(to.size).toBeGreaterThan(3);
  });

  test('targeted: only images of the source class, all relabelled to the target', () => {
    const s = set();
    const p = poison(s, { kind: 'label-flip', rate: 0.05, seed: 1, source: 3, target: 8 }, 10);
    expect(p.indices).toHaveLength(10);
    for (const i of p.indices) {
      expect(s.labels[i]).toBe(3);
      expect(p.labels[i]).toBe(8);
    }
  });
});

describe('options out of range', () => {
  const badnets = { kind: 'badnets', seed: 1, target: 0, patch: 3, position: 'bottom-right', value: 255 } as const;
  test.each([
    [{ ...badnets, rate: 0 }, '--rate: must be in (0, 0.5], got 0'],
    [{ ...badnets, rate: 0.51 }, '--rate: must be in (0, 0.5], got 0.51'],
    [{ ...badnets, rate: 0.1, target: 10 }, "--target: class 10 is outside the dataset's classes 0..9"],
    [{ ...badnets, rate: 0.1, patch: 9 }, '--patch: a 9-pixel patch does not fit in 8×8 images'],
    [{ ...badnets, rate: 0.1, position: { x: 6, y: 0 } }, '--position: a 3-pixel patch at 6,0 leaves the 8×8 image'],
    [{ ...badnets, rate: 0.1, value: 256 }, '--value: pixel values are 0..255, got 256'],
    [
      { kind: 'label-flip', rate: 0.1, seed: 1, source: 3 },
      '--target: targeted label flipping (--source) needs a target class',
    ],
    [
      { kind: 'label-flip', rate: 0.2, seed: 1, source: 3, target: 4 },
      '--rate: 40 images to poison, but only 20 are of the source class',
    ],
  ] as const)('%j', (spec, message) => {
    expect(() => poison(set(), spec, 10)).toThrow(PoisonSpecError);
    expect(() => poison(set(), spec, 10)).toThrow(message);
  });
});
