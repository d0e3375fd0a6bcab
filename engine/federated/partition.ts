// How a federation's training split is dealt to its clients: IID (a seeded shuffle cut into K near-equal parts) or
// non-IID by class (for each class, Dirichlet(α) proportions over the clients, Hsu et al. 2019), the usual ways of
// simulating federated data. Every client computes the same partition from the same seed, so each can take its own
// part of a shared copy of the split without anyone sending it indices.
import { InputError } from '../input-error.js';
import type { ImageSet } from '../data/fashion.js';
import { Rng } from '../runtime/rng.js';

export type Partition = { kind: 'iid' } | { kind: 'dirichlet'; alpha: number };

/** Each client's indices into the split, ascending. Every index goes to exactly one client. */
export function partition(labels: ArrayLike<number>, clients: number, how: Partition, seed: number): Uint32Array[] {
  if (!Number.isInteger(clients) || clients < 2)
    throw new InputError(`a federation needs at least 2 clients, got ${clients}`);
  if (labels.length < clients) throw new InputError(`${labels.length} images cannot be dealt to ${clients} clients`);
  const rng = new Rng((Math.imul(seed, 2654435761) ^ 0x5eed_fed) >>> 0);
  const parts: number[][] = Array.from({ length: clients }, () => []);
  if (how.kind === 'iid') {
    const order = rng.shuffle(labels.length);
    order.forEach((index, i) => parts[i % clients].push(index));
  } else {
    if (!(how.alpha > 0)) throw new InputError(`the Dirichlet α must be above 0, got ${how.alpha}`);
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < labels.length; i++) {
      const list = byClass.get(labels[i]) ?? [];
      list.push(i);
      byClass.set(labels[i], list);
    }
    for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
      const members = byClass.get(c)!;
      const order = rng.shuffle(members.length);
      const draws = Array.from({ length: clients }, () => rng.gamma(how.alpha));
      const total = draws.reduce((a, b) => a + b, 0);
      // Cut points at the cumulative proportions; the last client takes the remainder.
      let from = 0;
      let cumulative = 0;
      for (let k = 0; k < clients; k++) {
        cumulative += draws[k] / total;
        const to = k === clients - 1 ? members.length : Math.round(cumulative * members.length);
        for (let j = from; j < to; j++) parts[k].push(members[order[j]]);
        from = Math.max(from, to);
      }
    }
  }
  return parts.map((p, k) => {
    if (p.length === 0)
      throw new InputError(`client ${k + 1} of ${clients} gets no images under this partition; raise α or the seed`);
    return Uint32Array.from(p).sort();
  });
}

/** The images at `indices`, copied into a set of their own. */
export function subset(set: ImageSet, indices: Uint32Array): ImageSet {
  const pixels = set.shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  indices.forEach((k, i) => {
    images.set(set.images.subarray(k * pixels, (k + 1) * pixels), i * pixels);
    labels[i] = set.labels[k];
  });
  return { images, labels, count: indices.length, shape: set.shape };
}
