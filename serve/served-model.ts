// The model the guarded server answers with, and how it changes: a rollback builds the new session first and then
// swaps it in, so requests already running finish on the old one and none is dropped; the served model's file is
// re-hashed on an interval, and a file that no longer matches its attested digest stops the serving (fail closed).
import type { InferenceSession } from 'onnxruntime-node';
import { hashRegular } from '../engine/io/regular-file.js';
import type { ArtifactStore } from '../engine/io/artifact-store.js';
import { modelInputShape } from '../engine/onnx/model.js';
import { createSession, floatTensor } from '../engine/runtime/session.js';
import type { AttestedModel } from './attested-model.js';

export interface Loaded {
  attested: AttestedModel;
  /** The attestation's reference in the artifact store (sha256:<hex> of the envelope). */
  attestation: string;
  session: InferenceSession;
  input: string;
  /** One example's dimensions. */
  shape: number[];
  inflight: number;
  /** The adversarial-input detector's threshold calibrated for this model (each model has its own). */
  detectorThreshold?: number;
  /** Switched out: its session is released when the last run on it ends (a model being readied is not). */
  retired?: boolean;
}

/** One example's dimensions from the model's first input, which must be [N, ...static sizes]. */
export function inputShape(a: AttestedModel): { name: string; shape: number[] } {
  try {
    return modelInputShape(a.model);
  } catch (e) {
    throw new Error(`refusing to serve: ${(e as Error).message}`);
  }
}

async function load(attested: AttestedModel, attestation: string, threads?: number): Promise<Loaded> {
  const { name, shape } = inputShape(attested);
  return {
    attested,
    attestation,
    session: await createSession(attested.model, { threads }),
    input: name,
    shape,
    inflight: 0,
  };
}

export class ServedModel {
  /** Why the server refuses to answer (the model file changed), or undefined while it serves. */
  halted?: string;
  switches = 0;
  /** The monitor's latest judged window, shown in /metrics when the server follows its monitor. */
  lastWindow?: { index: number; drift: { stat: string; psi: number; ks?: { p: number } }[] };
  /** When the decision that chose the model served now was issued, and every decision acted on: no replays. */
  chosenAt?: number;
  readonly usedDecisions = new Set<string>();
  /** Readies a model before it is switched in (the detector calibrates its threshold on it). */
  prepare?: (next: Loaded) => Promise<void>;

  private constructor(
    private current: Loaded,
    private readonly threads?: number,
  ) {}

  static async create(attested: AttestedModel, attestation: string, threads?: number): Promise<ServedModel> {
    return new ServedModel(await load(attested, attestation, threads), threads);
  }

  get now(): Loaded {
    return this.current;
  }

  /** Logits of n inputs, on the model current when the call began. */
  async run(x: Float32Array, n: number): Promise<{ logits: Float32Array; model: Loaded }> {
    return this.runOn(this.current, x, n);
  }

  /** Runs fn on the model current now, kept alive until fn is done even if a switch happens meanwhile. */
  async use<T>(fn: (m: Loaded) => Promise<T>): Promise<T> {
    const m = this.current;
    m.inflight++;
    try {
      return await fn(m);
    } finally {
      this.done(m);
    }
  }

  /** Logits on one loaded model (the detector scores on the model that answered, even across a switch). */
  async runOn(m: Loaded, x: Float32Array, n: number): Promise<{ logits: Float32Array; model: Loaded }> {
    m.inflight++;
    try {
      const out = await m.session.run({ [m.input]: floatTensor(x, [n, ...m.shape]) });
      return { logits: out[m.session.outputNames[0]].data as Float32Array, model: m };
    } finally {
      this.done(m);
    }
  }

  private done(m: Loaded): void {
    m.inflight--;
    if (m.retired && m.inflight === 0) void m.session.release();
  }

  /** Serve another attested model from now on; it must take inputs of the same shape. */
  async switchTo(attested: AttestedModel, attestation: string): Promise<void> {
    const next = await load(attested, attestation, this.threads);
    if (next.shape.join('x') === this.current.shape.join('x') && this.prepare) {
      await this.prepare(next).catch(async (e: unknown) => {
        await next.session.release();
        throw e;
      });
    }
    if (next.shape.join('x') !== this.current.shape.join('x')) {
      await next.session.release();
      throw new Error(
        `the model takes [${next.shape.join(', ')}] inputs, not the served [${this.current.shape.join(', ')}]`,
      );
    }
    const old = this.current;
    this.current = next;
    this.halted = undefined;
    this.switches++;
    old.retired = true;
    if (old.inflight === 0) await old.session.release();
  }

  /** Re-hashes the served model's file in the store; a mismatch or an unreadable file halts serving. */
  async checkIntegrity(store: ArtifactStore): Promise<void> {
    const m = this.current;
    let why: string | undefined;
    try {
      // Inside the try: a remote store that cannot deliver the file halts serving, it does not crash the server.
      const { sha256 } = await hashRegular(await store.localPath(m.attested.sha256));
      if (sha256 !== m.attested.sha256)
        why = `the model file now hashes to ${sha256}, not the attested ${m.attested.sha256}`;
    } catch (e) {
      why = `the model file cannot be read: ${(e as Error).message}`;
    }
    // Only if the model checked is still the one served (a rollback may have happened meanwhile). A halt lasts until
    // the next switch: a file that changed once is not trusted again because it changed back.
    if (why && m === this.current) this.halted = why;
  }

  async close(): Promise<void> {
    await this.current.session.release();
  }
}
