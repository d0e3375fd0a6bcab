import { PolicyError, describeValue } from './errors.js';

type Mapping = Record<string, unknown>;

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
