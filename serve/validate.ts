// Input validation before the model runs: the batch's size and shape, each value a finite number inside the
// policy's range. Pure and allocation-light: it runs on every request, and its p99 is a target
// (≤ 1 ms for one image).

export interface InputSpec {
  /** One example's dimensions, e.g. [1, 28, 28]. */
  shape: number[];
  range: [number, number];
  maxBatch: number;
}

export type RejectReason =
  | 'content-type'
  | 'json'
  | 'batch'
  | 'shape'
  | 'dtype'
  | 'not-finite'
  | 'range'
  | 'size'
  /** The adversarial-input detector flagged the input and the policy refuses flagged inputs. */
  | 'flagged';

export type Validated = { ok: true; x: Float32Array; n: number } | { ok: false; reason: RejectReason; detail: string };

const reject = (reason: RejectReason, detail: string): Validated => ({ ok: false, reason, detail });

/** `{"inputs": [[...], ...]}`: a batch of flattened examples. */
export function validateJson(body: unknown, spec: InputSpec): Validated {
  const inputs = (body as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs)) return reject('json', 'expected {"inputs": [[...], ...]}, a batch of flattened inputs');
  const n = inputs.length;
  if (n === 0 || n > spec.maxBatch) return reject('batch', `batch of ${n}; send 1 to ${spec.maxBatch} inputs`);
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * size);
  const [min, max] = spec.range;
  for (let i = 0; i < n; i++) {
    const row = inputs[i] as unknown;
    if (!Array.isArray(row) || row.length !== size)
      return reject(
        'shape',
        `inputs[${i}] has ${Array.isArray(row) ? row.length : 'no'} values; ` +
          `expected ${size} (${spec.shape.join('×')})`,
      );
    for (let k = 0; k < size; k++) {
      const v = row[k] as unknown;
      if (typeof v !== 'number')
        return reject('dtype', `inputs[${i}][${k}] is ${v === null ? 'null' : typeof v}, not a number`);
      if (!Number.isFinite(v)) return reject('not-finite', `inputs[${i}][${k}] is ${v}`);
      // The model sees the float32 value: check that one against the range.
      const f = Math.fround(v);
      if (f < min || f > max) return reject('range', `inputs[${i}][${k}] = ${v} is outside [${min}, ${max}]`);
      x[i * size + k] = f;
    }
  }
  return { ok: true, x, n };
}

/**
 * A raw body: little-endian float32 (values checked like JSON's) or uint8 (scaled from 0..255 into the range), with
 * the batch's shape in a header, e.g. `x-secmlops-shape: 2,1,28,28`.
 */
export function validateRaw(body: Buffer, shapeHeader: unknown, dtype: unknown, spec: InputSpec): Validated {
  const dims = typeof shapeHeader === 'string' ? shapeHeader.split(',').map((d) => Number(d.trim())) : [];
  const n = dims[0];
  if (dims.length !== spec.shape.length + 1 || dims.some((d) => !Number.isInteger(d) || d < 0))
    return reject('shape', `x-secmlops-shape must be N,${spec.shape.join(',')}; got ${String(shapeHeader)}`);
  if (dims.slice(1).some((d, i) => d !== spec.shape[i]))
    return reject('shape', `x-secmlops-shape ${dims.join(',')} does not match the model's N,${spec.shape.join(',')}`);
  if (n === 0 || n > spec.maxBatch) return reject('batch', `batch of ${n}; send 1 to ${spec.maxBatch} inputs`);
  const count = n * spec.shape.reduce((a, b) => a * b, 1);
  const [min, max] = spec.range;
  if (dtype === 'uint8') {
    if (body.length !== count) return reject('shape', `${body.length} bytes for ${count} uint8 values`);
    const x = new Float32Array(count);
    for (let k = 0; k < count; k++) x[k] = min + (body[k] / 255) * (max - min);
    return { ok: true, x, n };
  }
  if (dtype !== undefined && dtype !== 'float32')
    return reject('dtype', `x-secmlops-dtype must be float32 or uint8, not ${JSON.stringify(dtype)}`);
  if (body.length !== count * 4) return reject('shape', `${body.length} bytes for ${count} float32 values`);
  const x = new Float32Array(count);
  for (let k = 0; k < count; k++) {
    const v = body.readFloatLE(k * 4);
    if (!Number.isFinite(v)) return reject('not-finite', `value ${k} is ${v}`);
    if (v < min || v > max) return reject('range', `value ${k} = ${v} is outside [${min}, ${max}]`);
    x[k] = v;
  }
  return { ok: true, x, n };
}
