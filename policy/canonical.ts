// Canonical bytes for everything that is signed or hashed: JSON with keys sorted at every level, no undefined
// members, finite numbers only. Signers and verifiers (workers, workflow code, `verify`) must agree byte for byte,
// so this is the only serializer used for signatures and the audit chain. Pure JS: workflow code imports it.
import { sha256 } from '@noble/hashes/sha2.js';

/** Thrown for a value that has no canonical form (a function, a cycle, NaN, a non-plain object). */
export class CanonicalError extends Error {}

export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(v: unknown, seen: Set<object>): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalError(`${v} has no canonical JSON form`);
      return JSON.stringify(v);
    case 'object':
      break;
    default:
      throw new CanonicalError(`a ${typeof v} has no canonical JSON form`);
  }
  const o = v;
  if (seen.has(o)) throw new CanonicalError('a cyclic value has no canonical JSON form');
  seen.add(o);
  try {
    if (Array.isArray(o)) return `[${o.map((x) => (x === undefined ? 'null' : write(x, seen))).join(',')}]`;
    const proto = Object.getPrototypeOf(o) as unknown;
    if (proto !== Object.prototype && proto !== null)
      throw new CanonicalError('only plain objects have a canonical JSON form');
    const keys = Object.keys(o)
      .filter((k) => (o as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${write((o as Record<string, unknown>)[k], seen)}`).join(',')}}`;
  } finally {
    seen.delete(o);
  }
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function sha256Hex(data: Uint8Array | string): string {
  const bytes = typeof data === 'string' ? utf8(data) : data;
  let hex = '';
  for (const b of sha256(bytes)) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** SHA-256 of a domain tag and a value's canonical JSON: what every digest in the system is. */
export function digestOf(domain: string, value: unknown): string {
  return sha256Hex(`${domain}\n${canonicalJson(value)}`);
}
