// OpenTelemetry traces for workflows and activities (@temporalio/interceptors-opentelemetry), configured by the
// standard OTEL variables. Off unless asked for: an exporter that cannot reach its collector would log on every
// batch, and workflow spans cost CPU in the sandbox.
import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource, detectResourcesSync, envDetectorSync } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NoopSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ClientInterceptors } from '@temporalio/client';
import type { WorkerOptions } from '@temporalio/worker';
import { createRequire } from 'node:module';

/** The workflow side's interceptors: bundled with the workflows when tracing is on (bundleWorkflowCode). */
export const WORKFLOW_TRACING_MODULE = createRequire(import.meta.url).resolve(
  '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors',
);

/** A Temporal client's tracing (the console's, `npm start`'s): its calls as spans, their context in headers. */
export interface ClientTracing {
  /** For the process's own spans (the console's requests). */
  tracer: Tracer;
  clientInterceptors: ClientInterceptors;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

export interface Tracing extends ClientTracing {
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** The worker options that trace activities and receive the workflows' spans. */
  workerOptions: Pick<WorkerOptions, 'interceptors' | 'sinks'>;
}

/** For a bundle built with tracing run by a worker without it: the workflows' spans go nowhere, quietly. */
export function discardedWorkflowSpans(): Pick<WorkerOptions, 'sinks'> {
  return { sinks: { exporter: makeWorkflowExporter(new NoopSpanProcessor(), Resource.empty()) } };
}

/**
 * A tracer provider when the environment asks for it: OTEL_TRACES_EXPORTER=otlp|console, or an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none turn it off. The exporter reads its own variables (headers, timeout, protocol), the
 * batch processor OTEL_BSP_*, the resource OTEL_SERVICE_NAME (default: the process's role) and
 * OTEL_RESOURCE_ATTRIBUTES. Registered as the global provider, with a context manager.
 */
function providerFromEnv(env: NodeJS.ProcessEnv, service: string): Omit<Tracing, 'workerOptions'> | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return undefined;
  const asked = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (asked === 'none' || (!asked && !endpoint)) return undefined;
  let exporter: SpanExporter;
  if (!asked || asked === 'otlp') exporter = new OTLPTraceExporter();
  else if (asked === 'console') exporter = new ConsoleSpanExporter();
  else throw new Error(`OTEL_TRACES_EXPORTER: "${asked}" is not supported here (otlp, console or none)`);
  const resource = new Resource({ 'service.name': env.OTEL_SERVICE_NAME || service }).merge(
    detectResourcesSync({ detectors: [envDetectorSync] }),
  );
  const spanProcessor = new BatchSpanProcessor(exporter);
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // The interceptors use the global tracer, and take their parent span from the active context: without a context
  // manager nothing is ever active, and every activity (or every request's Temporal call) would start its own trace.
  provider.register({ contextManager: new AsyncLocalStorageContextManager().enable() });
  return {
    resource,
    spanProcessor,
    tracer: trace.getTracer('secmlops'),
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/** A worker's tracing when the environment asks for it (providerFromEnv); service name secmlops-worker. */
export function tracingFromEnv(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  const p = providerFromEnv(env, 'secmlops-worker');
  if (!p) return undefined;
  const { resource, spanProcessor } = p;
  return {
    ...p,
    workerOptions: {
      interceptors: {
        activity: [
          (ctx) => ({
            inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
            outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
          }),
        ],
        workflowModules: [WORKFLOW_TRACING_MODULE],
      },
      sinks: { exporter: makeWorkflowExporter(spanProcessor, resource) },
    },
  };
}

/** The console's tracing when the environment asks for it (providerFromEnv); service name secmlops-console. */
export function clientTracingFromEnv(env: NodeJS.ProcessEnv = process.env): ClientTracing | undefined {
  return providerFromEnv(env, 'secmlops-console');
}
