// One OpenTelemetry span per console request, active while the route runs, so the Temporal calls it makes (a
// decision's Update, a page's queries) are its children and carry the trace to the workers. The span names the route
// pattern and status, never the URL (a sign-in link or a form could carry a secret). A traceparent header sent to
// the console is ignored: anyone can send one, and it would let them file their requests under another trace.
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export function traceRequests(app: FastifyInstance, tracer: Tracer): void {
  const spans = new WeakMap<FastifyRequest, Span>();
  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const span = tracer.startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route } },
      // A root context: nothing from the request decides the trace.
      trace.deleteSpan(context.active()),
    );
    spans.set(req, span);
    // The rest of the request's hooks and its handler run inside the span's context.
    context.with(trace.setSpan(context.active(), span), done);
  });
  app.addHook('onError', async (req, _reply, error) => {
    const span = spans.get(req);
    span?.recordException(error);
  });
  const end = (req: FastifyRequest, status: number | undefined) => {
    const span = spans.get(req);
    if (!span) return;
    spans.delete(req);
    if (status !== undefined) span.setAttribute('http.response.status_code', status);
    // Server spans are errors for 5xx only: a refused decision (4xx) is the console doing its job.
    if (status === undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };
  app.addHook('onResponse', async (req, reply) => end(req, reply.statusCode));
  app.addHook('onRequestAbort', async (req) => end(req, undefined));
}
