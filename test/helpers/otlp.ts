// A stand-in trace collector: OTLP/HTTP JSON on /v1/traces, as @opentelemetry/exporter-trace-otlp-http sends it.
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Fixture } from './fixture.js';
import { spawnWorker, type WorkerProcess } from './processes.js';
import { testAddress } from './temporal.js';

export interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** Filled in here from the resource the span came with. */
  service?: string;
}

export interface Collector {
  url: string;
  spans: OtlpSpan[];
  services: Set<string>;
  /** The first span so named, waiting up to `ms` for it. */
  waitFor(name: string | RegExp, ms?: number): Promise<OtlpSpan | undefined>;
  close(): void;
}

export async function collector(): Promise<Collector> {
  const spans: OtlpSpan[] = [];
  const services = new Set<string>();
  const body = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const server = createServer((req, res) => {
    void body(req).then((text) => {
      if (req.url === '/v1/traces' && req.method === 'POST') {
        const doc = JSON.parse(text) as {
          resourceSpans: {
            resource: { attributes: { key: string; value: { stringValue?: string } }[] };
            scopeSpans: { spans: OtlpSpan[] }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
          if (service) services.add(service);
          for (const ss of rs.scopeSpans) spans.push(...ss.spans.map((s) => ({ ...s, service })));
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const find = (name: string | RegExp) =>
    spans.find((s) => (typeof name === 'string' ? s.name === name : name.test(s.name)));
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    services,
    async waitFor(name, ms = 30_000) {
      const until = Date.now() + ms;
      while (!find(name) && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
      return find(name);
    },
    close: () => server.close(),
  };
}

/** A `secmlops worker` process tracing to `otlp` as `service`; with no prebuilt bundle it bundles the interceptors. */
export async function spawnTracedWorker(fx: Fixture, otlp: Collector, service: string): Promise<WorkerProcess> {
  return spawnWorker({
    TEMPORAL_ADDRESS: testAddress(),
    SECMLOPS_HOME: join(fx.dir, 'home'),
    ...fx.env,
    SECMLOPS_WORKFLOW_BUNDLE: '',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_SERVICE_NAME: service,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
}
