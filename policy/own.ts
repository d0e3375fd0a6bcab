// Lookups keyed by client input. A plain object inherits `constructor`, `toString` and `__proto__` from
// Object.prototype, so `policy.channels[input]` with input "constructor" finds a function instead of nothing.
// Every lookup of a key that came from outside goes through here and sees own properties only.

/** The value stored under key itself, never one inherited from the prototype chain. */
export function own<T>(record: Partial<Record<string, T>> | undefined, key: unknown): T | undefined {
  if (record === undefined || record === null || typeof key !== 'string') return undefined;
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** Whether key names an own property of record (a string key only). */
export function hasOwn(record: object | undefined, key: unknown): boolean {
  return (
    record !== undefined &&
    record !== null &&
    typeof key === 'string' &&
    Object.prototype.hasOwnProperty.call(record, key)
  );
}

/** Keys that name Object.prototype's members: refused wherever a client names a key. */
export const PROTOTYPE_KEYS: readonly string[] = [
  '__proto__',
  'constructor',
  'prototype',
  ...Object.getOwnPropertyNames(Object.prototype),
];
