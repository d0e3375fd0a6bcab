// Checkpoints: one file holding a JSON header and the float buffers it names (weights and optimizer state), ending in
// the SHA-256 of everything before it, so a damaged file is refused wherever it was kept.
import { createHash } from 'node:crypto';
import type { OptimizerState } from './optim.js';

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  /** Robust validation accuracy, when early stopping measures it. */
  robustValidation?: number;
  /** Clean validation accuracy on the same held-out set. */
  cleanValidation?: number;
  seconds: number;
}

export interface Checkpoint {
  arch: string;
  seed: number;
  /** Epochs finished. */
  epoch: number;
  /** Steps finished within the current epoch. */
  step: number;
  weights: Map<string, Float32Array>;
  optimizer: OptimizerState;
  history: EpochRecord[];
  /** The best epoch by robust validation accuracy, with its weights (early stopping). */
  best?: { epoch: number; robustValidation: number; cleanValidation?: number; weights: Map<string, Float32Array> };
  /** Settings the run was started with; a resume must use the same. */
  settings: Record<string, unknown>;
}

const MAGIC = 'SECMLOPS-CKPT-2\n';
const DIGEST = 32;

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const buffers: Buffer[] = [];
  let offset = 0;
  const table: Record<string, [number, number]> = {};
  const add = (key: string, a: Float32Array) => {
    table[key] = [offset, a.length];
    buffers.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
    offset += a.byteLength;
  };
  for (const [k, a] of c.weights) add(`w/${k}`, a);
  for (const [k, a] of Object.entries(c.optimizer.m)) add(`m/${k}`, a);
  for (const [k, a] of Object.entries(c.optimizer.v)) add(`v/${k}`, a);
  if (c.best) for (const [k, a] of c.best.weights) add(`b/${k}`, a);
  const header = {
    arch: c.arch,
    seed: c.seed,
    epoch: c.epoch,
    step: c.step,
    optimizer: { kind: c.optimizer.kind, t: c.optimizer.t },
    history: c.history,
    best: c.best && {
      epoch: c.best.epoch,
      robustValidation: c.best.robustValidation,
      ...(c.best.cleanValidation === undefined ? {} : { cleanValidation: c.best.cleanValidation }),
    },
    settings: c.settings,
    table,
  };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const body = Buffer.concat([Buffer.from(MAGIC), len, json, ...buffers]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

export function decodeCheckpoint(bytes: Buffer, file: string): Checkpoint {
  const magic = bytes.subarray(0, MAGIC.length).toString();
  if (magic !== MAGIC)
    throw new Error(
      magic.startsWith('SECMLOPS-CKPT-')
        ? `${file}: checkpoint format ${magic.trim().slice(14)} is not this version's (2); start the run afresh`
        : `${file}: not a SecMLOps checkpoint`,
    );
  const start = MAGIC.length + 4;
  if (bytes.length < start + DIGEST) throw new Error(`${file}: truncated checkpoint header`);
  const len = bytes.readUInt32LE(MAGIC.length);
  if (bytes.length < start + len + DIGEST) throw new Error(`${file}: truncated checkpoint header`);
  const body = bytes.subarray(0, bytes.length - DIGEST);
  if (
    !createHash('sha256')
      .update(body)
      .digest()
      .equals(bytes.subarray(bytes.length - DIGEST))
  ) {
    throw new Error(`${file}: damaged checkpoint (its SHA-256 does not match its contents; truncated or altered)`);
  }
  const header = JSON.parse(bytes.subarray(start, start + len).toString()) as {
    arch: string;
    seed: number;
    epoch: number;
    step: number;
    optimizer: { kind: OptimizerState['kind']; t: number };
    history: EpochRecord[];
    best?: { epoch: number; robustValidation: number; cleanValidation?: number };
    settings: Record<string, unknown>;
    table: Record<string, [number, number]>;
  };
  const data = start + len;
  const groups: Record<string, Map<string, Float32Array>> = { w: new Map(), m: new Map(), v: new Map(), b: new Map() };
  for (const [key, [off, n]] of Object.entries(header.table)) {
    if (data + off + n * 4 > body.length) throw new Error(`${file}: truncated checkpoint data (${key})`);
    const copy = new Float32Array(n);
    Buffer.from(copy.buffer).set(bytes.subarray(data + off, data + off + n * 4));
    groups[key.slice(0, 1)].set(key.slice(2), copy);
  }
  return {
    arch: header.arch,
    seed: header.seed,
    epoch: header.epoch,
    step: header.step,
    weights: groups.w,
    optimizer: {
      kind: header.optimizer.kind,
      t: header.optimizer.t,
      m: Object.fromEntries(groups.m),
      v: Object.fromEntries(groups.v),
    },
    history: header.history,
    best: header.best && { ...header.best, weights: groups.b },
    settings: header.settings,
  };
}

/** A checkpoint of the run's state now: every array copied, so training can go on while it is written. */
export function snapshot(c: Checkpoint): Checkpoint {
  const copy = (m: Record<string, Float32Array>) =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.slice()]));
  return {
    ...c,
    weights: new Map([...c.weights].map(([k, v]) => [k, v.slice()])),
    optimizer: { ...c.optimizer, m: copy(c.optimizer.m), v: copy(c.optimizer.v) },
    history: [...c.history],
  };
}
