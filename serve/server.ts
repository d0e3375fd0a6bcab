// The guarded inference server: it serves one attested model (serve/attested-model.ts) and validates every input
// before the model sees it. Every refusal is a 400 (413 for an oversized body) with a JSON reason, counted by reason
// in /metrics; the server keeps serving.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { ArtifactStore } from '../engine/io/artifact-store.js';
import { summarise } from '../engine/monitor/stats.js';
import type { TelemetryRecord, TelemetryWriter } from '../engine/monitor/telemetry.js';
import type { AttestedModel } from './attested-model.js';
import { ServeMetrics } from './metrics.js';
import { ServedModel } from './served-model.js';
import { calibrateDetector, detect, type Detector } from './detector.js';
import { validateJson, validateRaw, type InputSpec, type RejectReason, type Validated } from './validate.js';

export interface ServeOptions {
  attested: AttestedModel;
  /** The attestation's reference: sha256:<hex> of the envelope's bytes (as the artifact store names it). */
  attestation?: string;
  /** Request summaries for the monitor stage (never raw inputs unless rawInputs). */
  telemetry?: { writer: TelemetryWriter; rawInputs: boolean };
  /** Feature squeezing, calibrated: flagged inputs are answered with a flag, or refused. */
  detector?: Detector;
  /** Re-hash the served model's file in this store every everyMs; a mismatch stops the serving. */
  integrity?: { store: ArtifactStore; everyMs: number };
  /** The valid input range (the policy's evaluate.range; default [0, 1]). */
  range?: [number, number];
  /** Most inputs per request (default 64). */
  maxBatch?: number;
  /** Largest request body in bytes (default 4 MiB). */
  bodyLimit?: number;
  threads?: number;
  /** How long a request may take to arrive whole (default 10 s). */
  requestTimeoutMs?: number;
  /** Open connections at most (default 1024). */
  maxConnections?: number;
  /** Model runs at once (default 4) and requests waiting for one (default 512; more are answered 503). */
  maxConcurrentRuns?: number;
  maxQueued?: number;
}

export interface Server {
  app: FastifyInstance;
  metrics: ServeMetrics;
  spec: InputSpec;
  served: ServedModel;
  close(): Promise<void>;
}

export async function createServer(o: ServeOptions): Promise<Server> {
  const served = await ServedModel.create(o.attested, o.attestation ?? 'unknown', o.threads);
  const spec: InputSpec = { shape: served.now.shape, range: o.range ?? [0, 1], maxBatch: o.maxBatch ?? 64 };
  const metrics = new ServeMetrics();
  const det = o.detector;
  if (det?.calibration) {
    // A model switched in gets its own threshold, calibrated on the same clean images before it serves.
    const clean = det.calibration;
    served.prepare = async (next) => {
      const run = async (x: Float32Array, n: number) => (await served.runOn(next, x, n)).logits;
      next.detectorThreshold = (await calibrateDetector(run, clean, det)).threshold;
    };
  }
  const integrity = o.integrity;
  const watchdog = integrity
    ? setInterval(() => void served.checkIntegrity(integrity.store), integrity.everyMs).unref()
    : undefined;
  // A client that sends its body a byte at a time, or never finishes, is cut off; connections are capped.
  const app = Fastify({
    bodyLimit: o.bodyLimit ?? 4 * 1024 * 1024,
    logger: false,
    connectionTimeout: o.requestTimeoutMs ?? 10_000,
    requestTimeout: o.requestTimeoutMs ?? 10_000,
    keepAliveTimeout: 5_000,
  });
  app.server.maxConnections = o.maxConnections ?? 1024;
  const limit = runLimit(o.maxConcurrentRuns ?? 4, o.maxQueued ?? 512);
  // Raw tensors arrive as octet streams; anything but JSON or octets is refused in the error handler below.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const refuse = (reply: FastifyReply, status: number, reason: RejectReason, detail: string) => {
    metrics.rejected(reason);
    metrics.request(status);
    return reply.code(status).send({ error: 'invalid input', reason, detail });
  };

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    if (err.statusCode === 413) return refuse(reply, 413, 'size', err.message);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || err.statusCode === 415)
      return refuse(reply, 400, 'content-type', 'send application/json or application/octet-stream');
    if (err.statusCode === 400) return refuse(reply, 400, 'json', err.message);
    metrics.request(500);
    return reply.code(500).send({ error: 'internal error' });
  });

  app.get('/healthz', async (_req, reply) => {
    const m = served.now.attested;
    return reply.code(served.halted ? 503 : 200).send({
      status: served.halted ? 'halted' : 'ok',
      ...(served.halted ? { reason: served.halted } : {}),
      model: `sha256:${m.sha256}`,
      attestation: served.now.attestation,
      pipeline: m.pipeline,
    });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type('text/plain; version=0.0.4').send(metrics.text(served.now.attested.sha256, served)),
  );

  app.post('/v1/predict', async (req, reply) => {
    const started = performance.now();
    // Fastify parses text/plain too; only JSON and raw tensors are inputs here.
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim()
      .toLowerCase();
    if (type !== 'application/json' && type !== 'application/octet-stream')
      return refuse(
        reply,
        400,
        'content-type',
        `send application/json or application/octet-stream, not ${type || 'nothing'}`,
      );
    const raw = Buffer.isBuffer(req.body);
    const v: Validated = raw
      ? validateRaw(req.body as Buffer, req.headers['x-secmlops-shape'], req.headers['x-secmlops-dtype'], spec)
      : validateJson(req.body, spec);
    metrics.validation.observe((performance.now() - started) / 1000);
    if (!v.ok) return refuse(reply, 400, v.reason, v.detail);
    if (served.halted) {
      metrics.request(503);
      return reply.code(503).send({ error: 'halted', detail: `not serving: ${served.halted}` });
    }
    const slot = await limit.acquire();
    if (!slot) {
      metrics.request(503);
      return reply.code(503).send({ error: 'busy', detail: 'too many requests waiting; retry later' });
    }
    let logits: Float32Array;
    let model: AttestedModel;
    let flags: boolean[] | undefined;
    try {
      // The prediction and the detector's scores come from the same model, held across a switch.
      ({ logits, model, flags } = await served.use(async (answered) => {
        const out = await served.runOn(answered, v.x, v.n);
        if (!o.detector) return { logits: out.logits, model: answered.attested, flags: undefined };
        const run = async (x: Float32Array, n: number) => (await served.runOn(answered, x, n)).logits;
        const threshold = answered.detectorThreshold ?? o.detector.threshold;
        const scored = await detect({ ...o.detector, threshold }, run, v.x, v.n, spec.shape);
        return { logits: out.logits, model: answered.attested, flags: scored.flags };
      }));
    } finally {
      limit.release();
    }
    if (flags) {
      const flagged = flags.filter(Boolean).length;
      metrics.scored(v.n, flagged);
      if (flagged && o.detector!.action === 'refuse') {
        if (o.telemetry)
          o.telemetry.writer.append(telemetryOf(v.x, logits, v.n, model.sha256, o.telemetry.rawInputs, flags));
        return refuse(
          reply,
          400,
          'flagged',
          `the detector flagged inputs ${flags.flatMap((f, i) => (f ? [i] : [])).join(', ')} as adversarial`,
        );
      }
    }
    const classes = logits.length / v.n;
    const predictions: number[] = [];
    const probabilities: number[][] = [];
    for (let i = 0; i < v.n; i++) {
      const row = logits.subarray(i * classes, (i + 1) * classes);
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      const e = Array.from(row, (z) => Math.exp(z - max));
      const sum = e.reduce((a, b) => a + b, 0);
      probabilities.push(e.map((p) => p / sum));
      predictions.push(e.indexOf(Math.max(...e)));
    }
    metrics.images += v.n;
    metrics.request(200);
    metrics.latency.observe((performance.now() - started) / 1000);
    if (o.telemetry)
      o.telemetry.writer.append(telemetryOf(v.x, logits, v.n, model.sha256, o.telemetry.rawInputs, flags));
    return reply.send({ model: `sha256:${model.sha256}`, predictions, probabilities, ...(flags ? { flags } : {}) });
  });

  return {
    app,
    metrics,
    spec,
    served,
    close: async () => {
      if (watchdog) clearInterval(watchdog);
      await app.close();
      await o.telemetry?.writer.close();
      await served.close();
    },
  };
}

/** One record per input: its summary, never the input itself unless the policy allows raw inputs. */
function telemetryOf(
  x: Float32Array,
  logits: Float32Array,
  n: number,
  model: string,
  raw: boolean,
  flags?: boolean[],
): TelemetryRecord[] {
  const t = Date.now();
  const d = x.length / n;
  return summarise(x, logits, n).map((s, i) => ({
    t,
    model,
    ...s,
    ...(flags?.[i] ? { flag: true } : {}),
    ...(raw ? { x: Array.from(x.subarray(i * d, (i + 1) * d)) } : {}),
  }));
}

/** At most `runs` model runs at once; up to `queued` more wait in order; beyond that, acquire() answers false. */
function runLimit(runs: number, queued: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    acquire: async (): Promise<boolean> => {
      if (active < runs) {
        active++;
        return true;
      }
      if (waiting.length >= queued) return false;
      await new Promise<void>((resolve) => waiting.push(resolve));
      return true;
    },
    release: (): void => {
      const next = waiting.shift();
      if (next) next();
      else active--;
    },
  };
}
