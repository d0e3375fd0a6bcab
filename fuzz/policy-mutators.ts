// Policy mutation at two levels. Object level: the seed's YAML is parsed to plain data, keys are deleted, values
// swapped for other types, prototype names injected, numbers and strings pushed to extremes, nodes nested deep or
// shared (the yaml package writes a shared node as an anchor and aliases), and the data is written back as YAML, so
// the result is YAML and reaches the policy checks. Text level: lines deleted, repeated, re-indented, YAML syntax
// (anchors, tags, directives) inserted, alias bombs and deep flow nesting appended, the document padded past 1 MiB.
import { parse, stringify } from 'yaml';
import { HOSTILE_STRINGS } from './bytes.js';
import type { FuzzRng } from './rng.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Container = Json[] | { [k: string]: Json };

/** A place in the document: a container and the key (or index) of one of its values. */
interface Slot {
  parent: Container;
  key: string | number;
}

function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const seen = new Set<Container>();
  const walk = (v: Json, depth: number) => {
    // Shared nodes (made by `share` below) are walked once; depth keeps deep-nested mutants cheap to walk.
    if (v === null || typeof v !== 'object' || seen.has(v) || depth > 50) return;
    seen.add(v);
    const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    for (const key of keys) {
      out.push({ parent: v, key });
      walk(get({ parent: v, key }), depth + 1);
    }
  };
  walk(root, 0);
  return out;
}

const get = (s: Slot): Json => (Array.isArray(s.parent) ? s.parent[s.key as number] : s.parent[s.key as string]);
/** Sets a value as an own property, so `__proto__` becomes a key rather than the object's prototype. */
function set(parent: Container, key: string | number, value: Json): void {
  if (Array.isArray(parent)) parent[key as number] = value;
  else Object.defineProperty(parent, key, { value, enumerable: true, configurable: true, writable: true });
}

const isContainer = (v: Json): v is Container => v !== null && typeof v === 'object';
const isMapping = (v: Json): v is { [k: string]: Json } => isContainer(v) && !Array.isArray(v);

/** Whether `target` is `from` or sits anywhere below it. */
function reaches(from: Json, target: Container): boolean {
  const seen = new Set<Container>();
  const walk = (v: Json): boolean => {
    if (!isContainer(v) || seen.has(v)) return false;
    if (v === target) return true;
    seen.add(v);
    return (Array.isArray(v) ? v : Object.values(v)).some(walk);
  };
  return walk(from);
}

const NUMBERS = [0, -0, -1, 1, 2, 100, 101, 1e21, 1e308, -1e308, 2 ** 53 + 1, 0.5, NaN, Infinity, -Infinity];
const DURATIONS = ['0s', '1s', '365d', '366d', '8761h', '99999999999999999999d', '-1d', '1.5h', '1e3s', 'P1D', '1 d'];
/** Base64 of 32 bytes that are not usable Ed25519 keys (all zero, the identity, small order), and near-misses. */
const KEYS = [
  'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  '7P///////////////////////////////////////38=',
  'JuFSXz7F8j+DdhBJAz8wz6lDGdmBqMZGCbKv5cbC1ew=',
  '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=',
  '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR==',
  '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
  '-----BEGIN PUBLIC KEY-----',
];
const PROTO_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

function randomValue(rng: FuzzRng): Json {
  switch (rng.int(9)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(NUMBERS);
    case 3:
      return rng.pick(HOSTILE_STRINGS);
    case 4:
      return rng.pick(DURATIONS);
    case 5:
      return rng.pick(KEYS);
    case 6:
      return [];
    case 7:
      return {};
    default:
      return [rng.pick(HOSTILE_STRINGS), rng.pick(NUMBERS)];
  }
}

type PolicyMutator = (rng: FuzzRng, root: { doc: Json }, all: Slot[]) => void;

export const POLICY_OBJECT_MUTATORS: Record<string, PolicyMutator> = {
  deleteKey: (rng, _r, all) => {
    const s = rng.pick(all);
    if (!s) return;
    if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
    else delete s.parent[s.key as string];
  },
  swapType: (rng, _r, all) => {
    const s = rng.pick(all);
    if (s) set(s.parent, s.key, randomValue(rng));
  },
  protoKey: (rng, _r, all) => {
    const maps = all.map(get).filter(isMapping);
    const m = rng.pick(maps);
    if (!m) return;
    const name = rng.pick(PROTO_NAMES);
    const keys = Object.keys(m);
    // Rename an existing entry (a person, a role, a split) or add one beside them.
    if (keys.length && rng.chance(0.6)) {
      const k = rng.pick(keys);
      const v = m[k];
      delete m[k];
      set(m, name, v);
    } else set(m, name, rng.chance(0.5) ? {} : randomValue(rng));
  },
  protoValue: (rng, _r, all) => {
    const strings = all.filter((s) => typeof get(s) === 'string');
    const s = rng.pick(strings);
    if (s) set(s.parent, s.key, rng.pick([...PROTO_NAMES, ...HOSTILE_STRINGS]));
  },
  number: (rng, _r, all) => {
    const numbers = all.filter((s) => typeof get(s) === 'number');
    const s = rng.pick(numbers.length ? numbers : all);
    if (s) set(s.parent, s.key, rng.pick(NUMBERS));
  },
  duration: (rng, _r, all) => {
    const s = rng.pick(all.filter((x) => x.key === 'timeout' || x.key === 'deadline'));
    if (s) set(s.parent, s.key, rng.pick(DURATIONS));
  },
  key: (rng, _r, all) => {
    const s = rng.pick(all.filter((x) => x.key === 'publicKey' || x.key === 'publicKeyFile'));
    if (!s) return;
    const v =
      s.key === 'publicKey' ? rng.pick(KEYS) : rng.pick(['junk.pub', '/dev/zero', 'fifo', '../../../etc/passwd', '.']);
    set(s.parent, s.key, v);
  },
  longString: (rng, _r, all) => {
    const s = rng.pick(all);
    if (s) set(s.parent, s.key, 'x'.repeat(rng.pick([100, 10_000, 300_000, 1_100_000])));
  },
  deepNest: (rng, _r, all) => {
    const s = rng.pick(all);
    if (!s) return;
    let v = get(s);
    for (let i = rng.pick([2, 10, 100]); i > 0; i--) v = rng.chance(0.5) ? [v] : { k: v };
    set(s.parent, s.key, v);
  },
  share: (rng, _r, all) => {
    // The same object in two places: the yaml package writes it once with an anchor and refers to it by alias.
    const from = rng.pick(all.filter((s) => isContainer(get(s))));
    const to = rng.pick(all);
    // Never inside itself: a cycle has no YAML or JSON text to write.
    if (from && to && !reaches(get(from), to.parent)) set(to.parent, to.key, get(from));
  },
  duplicate: (rng, _r, all) => {
    const s = rng.pick(all);
    if (!s) return;
    if (Array.isArray(s.parent)) s.parent.push(...Array.from({ length: rng.pick([1, 2, 50]) }, () => get(s)));
    else set(s.parent, `${s.key}_${rng.int(100)}`, get(s));
  },
  unknownKey: (rng, root, all) => {
    const maps = [root.doc, ...all.map(get)].filter(isMapping);
    const m = rng.pick(maps);
    if (m) set(m, rng.pick(['owner', 'version', 'name', 'extra', '']), randomValue(rng));
  },
  replaceRoot: (rng, root) => {
    root.doc = rng.chance(0.5) ? randomValue(rng) : [root.doc];
  },
};

/** Applies one to a few object-level mutations to plain data (a policy, an attestation); returns the new root. */
export function mutateJson(rng: FuzzRng, value: Json): { value: Json; applied: string[] } {
  const root = { doc: value };
  const names = Object.keys(POLICY_OBJECT_MUTATORS);
  const applied: string[] = [];
  for (let i = rng.geometric(3); i > 0; i--) {
    const name = rng.pick(names);
    POLICY_OBJECT_MUTATORS[name](rng, root, slots(root.doc));
    applied.push(name);
  }
  return { value: root.doc, applied };
}

/** Parses the seed, mutates the data (mutateJson) and writes it back as YAML. */
export function mutatePolicyObject(rng: FuzzRng, seed: string): { text: string; applied: string[] } {
  const { value, applied } = mutateJson(rng, parse(seed) as Json);
  // Flow style sometimes: the same data in the other syntax takes other paths through the YAML parser.
  return { text: stringify(value, { lineWidth: 0, collectionStyle: rng.chance(0.2) ? 'flow' : 'any' }), applied };
}

const SNIPPETS = [
  '&a',
  '*a',
  '<<: *a',
  'x: &a [1, 2]',
  'y: *nope',
  '!!binary AAAA',
  '!!js/function "function(){}"',
  '!<tag:yaml.org,2002:set> {a, b}',
  '? [a, b]\n: c',
  '%YAML 1.1',
  '---',
  '...',
  "key: 'unterminated",
  '\t- tab',
  '{',
  ']',
  '"\\u0000"',
  'version: 2',
  'version: 1',
  '__proto__: { polluted: true }',
  'people: { constructor: {} }',
];

type TextMutator = (rng: FuzzRng, lines: string[]) => string[];

/** A billion-laughs document: each level refers to the one before it ten times. */
function aliasBomb(levels: number): string {
  const out = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < levels; i++)
    out.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  return out.join('\n');
}

export const POLICY_TEXT_MUTATORS: Record<string, TextMutator> = {
  deleteLine: (rng, l) => l.filter((_, i) => i !== rng.int(l.length)),
  duplicateLine: (rng, l) => {
    const i = rng.int(l.length);
    return [...l.slice(0, i + 1), l[i] ?? '', ...l.slice(i + 1)];
  },
  swapLines: (rng, l) => {
    const [i, j] = [rng.int(l.length), rng.int(l.length)];
    const out = l.slice();
    [out[i], out[j]] = [out[j], out[i]];
    return out;
  },
  indent: (rng, l) => {
    const i = rng.int(l.length);
    const out = l.slice();
    out[i] = rng.chance(0.5) ? `${' '.repeat(rng.range(1, 4))}${out[i] ?? ''}` : (out[i] ?? '').replace(/^ {1,2}/, '');
    return out;
  },
  snippet: (rng, l) => {
    const i = rng.int(l.length + 1);
    return [...l.slice(0, i), rng.pick(SNIPPETS), ...l.slice(i)];
  },
  inlineSnippet: (rng, l) => {
    const i = rng.int(l.length);
    const out = l.slice();
    out[i] = `${out[i] ?? ''} ${rng.pick(SNIPPETS)}`;
    return out;
  },
  aliasBomb: (rng, l) => [...l, aliasBomb(rng.range(2, 9))],
  deepFlow: (rng, l) => {
    // The yaml library runs out of stack below 1,000 levels; deeper only costs time.
    const n = rng.pick([50, 500, 1000, 10_000]);
    return [...l, `deep: ${'['.repeat(n)}${']'.repeat(rng.chance(0.8) ? n : rng.int(n))}`];
  },
  deepBlock: (rng, l) => {
    const n = rng.pick([50, 500, 1400]); // 1,400 levels of indentation are just under 1 MiB
    return [...l, ...Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k${i}:`), `${' '.repeat(n)}v`];
  },
  pad: (rng, l) => [...l, `# ${'x'.repeat(rng.pick([1000, (1 << 20) - 100, 1 << 20]))}`],
  crlf: (_rng, l) => l.map((x) => `${x}\r`),
  bom: (_rng, l) => [`\ufeff${l[0] ?? ''}`, ...l.slice(1)],
  control: (rng, l) => {
    const i = rng.int(l.length);
    const out = l.slice();
    const s = out[i] ?? '';
    const at = rng.int(s.length + 1);
    out[i] = s.slice(0, at) + rng.pick(['\u0000', '\u0007', '\u2028', '\ud800', '\t', '\u0085']) + s.slice(at);
    return out;
  },
};

export function mutatePolicyText(rng: FuzzRng, seed: string): { text: string; applied: string[] } {
  let lines = seed.split('\n');
  const names = Object.keys(POLICY_TEXT_MUTATORS);
  const applied: string[] = [];
  for (let i = rng.geometric(3); i > 0; i--) {
    const name = rng.pick(names);
    lines = POLICY_TEXT_MUTATORS[name](rng, lines);
    applied.push(name);
  }
  return { text: lines.join('\n'), applied };
}
