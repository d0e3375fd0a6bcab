// A model's parameters as one flat vector in the architecture's parameter order: the unit clients and the server
// exchange (raw little-endian float32, its length fixed by the architecture, so there is nothing to parse).
import { InputError } from '../input-error.js';
import type { Architecture } from '../train/zoo.js';

export function parameterCount(arch: Architecture): number {
  return arch.params.reduce((n, p) => n + p.dims.reduce((a, b) => a * b, 1), 0);
}

export function flatten(arch: Architecture, weights: Map<string, Float32Array>): Float32Array {
  const out = new Float32Array(parameterCount(arch));
  let at = 0;
  for (const p of arch.params) {
    const w = weights.get(p.name);
    const n = p.dims.reduce((a, b) => a * b, 1);
    if (!w || w.length !== n) throw new Error(`parameter ${p.name}: expected ${n} values, got ${w?.length ?? 'none'}`);
    out.set(w, at);
    at += n;
  }
  return out;
}

export function unflatten(arch: Architecture, vector: Float32Array): Map<string, Float32Array> {
  if (vector.length !== parameterCount(arch))
    throw new InputError(`a ${arch.name} update has ${parameterCount(arch)} parameters, this one ${vector.length}`);
  const out = new Map<string, Float32Array>();
  let at = 0;
  for (const p of arch.params) {
    const n = p.dims.reduce((a, b) => a * b, 1);
    out.set(p.name, vector.slice(at, at + n));
    at += n;
  }
  return out;
}

/** Bytes of a stored vector, refused unless they hold exactly `count` finite float32 values. */
export function readVector(bytes: Uint8Array, count: number, what: string): Float32Array {
  if (bytes.byteLength !== count * 4)
    throw new InputError(`${what}: ${bytes.byteLength} bytes, expected ${count * 4} (${count} float32 values)`);
  const v = new Float32Array(count);
  new Uint8Array(v.buffer).set(bytes);
  for (let i = 0; i < count; i++)
    if (!Number.isFinite(v[i])) throw new InputError(`${what}: value ${i} is ${v[i]}, not a finite number`);
  return v;
}

export function vectorBytes(v: Float32Array | Uint32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** FedAvg's average (McMahan et al. 2017): Σ n_k·w_k / Σ n_k, accumulated in float64. */
export function weightedMean(updates: { vector: Float32Array; samples: number }[]): Float32Array {
  if (updates.length === 0) throw new Error('no updates to average');
  const n = updates[0].vector.length;
  const total = updates.reduce((s, u) => s + u.samples, 0);
  if (!(total > 0)) throw new Error('the updates hold no samples');
  const sum = new Float64Array(n);
  for (const u of updates) {
    if (u.vector.length !== n) throw new Error(`updates of ${n} and ${u.vector.length} parameters cannot be averaged`);
    const share = u.samples / total;
    for (let i = 0; i < n; i++) sum[i] += share * u.vector[i];
  }
  return Float32Array.from(sum);
}
