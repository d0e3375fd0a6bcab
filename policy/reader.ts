import { parseDuration } from './duration.js';
import { PolicyError, describeValue } from './errors.js';
import { PROTOTYPE_KEYS } from './own.js';

type Mapping = Record<string, unknown>;

/** The longest duration a policy may give: a year. Longer ones are typos, and huge ones overflow timers. */
export const MAX_DURATION_MS = 365 * 86_400_000;

/** Walks untrusted YAML data, turning every surprise into a PolicyError that names its path. */
export class Reader {
  constructor(readonly file: string) {}

  fail(path: string, expected: string): never {
    throw new PolicyError(this.file, path, expected);
  }

  mapping(v: unknown, path: string, keys: { required?: string[]; optional?: string[] } | 'any'): Mapping {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      this.fail(path, `expected a mapping, got ${describeValue(v)}`);
    const m = v as Mapping;
    if (keys !== 'any') {
      const allowed = [...(keys.required ?? []), ...(keys.optional ?? [])];
      for (const k of Object.keys(m)) {
        if (!allowed.includes(k))
          this.fail(join(path, k), `unknown key "${k}"; expected one of: ${allowed.join(', ')}`);
      }
      for (const k of keys.required ?? []) {
        if (m[k] === undefined) this.fail(join(path, k), `missing; this key is required`);
      }
    }
    return m;
  }

  list(v: unknown, path: string, opts: { nonEmpty?: boolean } = {}): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected a list, got ${describeValue(v)}`);
    if (opts.nonEmpty && v.length === 0) this.fail(path, 'expected a non-empty list');
    return v;
  }

  string(v: unknown, path: string, pattern?: RegExp, what?: string): string {
    if (typeof v !== 'string' || v.length === 0)
      this.fail(path, `expected ${what ?? 'a non-empty string'}, got ${describeValue(v)}`);
    if (pattern && !pattern.test(v))
      this.fail(path, `expected ${what ?? `text matching ${pattern}`}, got ${describeValue(v)}`);
    return v;
  }

  optString(v: unknown, path: string, pattern?: RegExp, what?: string): string | undefined {
    return v === undefined ? undefined : this.string(v, path, pattern, what);
  }

  number(v: unknown, path: string, min = -Infinity, max = Infinity): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.fail(path, `expected a number${rangeText(min, max)}, got ${describeValue(v)}`);
    }
    return v;
  }

  integer(v: unknown, path: string, min = -Infinity, max = Infinity): number {
    const n = this.number(v, path, min, max);
    if (!Number.isInteger(n)) this.fail(path, `expected a whole number${rangeText(min, max)}, got ${n}`);
    return n;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, `expected true or false, got ${describeValue(v)}`);
    return v;
  }

  /** A name the policy defines and later looks up (a person, role or split): none that every object inherits. */
  definedName(name: string, path: string, what: string): string {
    if (PROTOTYPE_KEYS.includes(name))
      this.fail(path, `"${name}" cannot be a ${what}: every JavaScript object inherits a property of that name`);
    return name;
  }

  /**
   * A duration such as "90s" or "7d" in milliseconds, from minMs up to a year; `expected` describes a good one for
   * the message when the text is not one or is too short.
   */
  duration(v: unknown, path: string, expected: string, minMs = 1): number {
    const text = this.string(v, path);
    const ms = parseDuration(text);
    if (ms === undefined) this.fail(path, `${expected}, got ${describeValue(text)}`);
    if (!(ms <= MAX_DURATION_MS))
      this.fail(path, `expected a duration of at most 365d (one year), got ${describeValue(text)}`);
    if (ms < minMs) this.fail(path, `${expected}, got ${describeValue(text)}`);
    return ms;
  }

  oneOf<T extends string>(v: unknown, path: string, options: readonly T[]): T {
    if (typeof v !== 'string' || !options.includes(v as T)) {
      this.fail(path, `expected one of ${options.join(', ')}, got ${describeValue(v)}`);
    }
    return v as T;
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function rangeText(min: number, max: number): string {
  if (min > -Infinity && max < Infinity) return ` from ${min} to ${max}`;
  if (min > -Infinity) return ` of at least ${min}`;
  if (max < Infinity) return ` of at most ${max}`;
  return '';
}
