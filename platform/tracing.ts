import { createRequire } from 'node:module';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Context as ActivityContext } from '@temporalio/activity';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  ActivityOutboundCallsInterceptor,
  GetLogAttributesInput,
  InjectedSinks,
  Next,
} from '@temporalio/worker';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { TracingConfig } from '../config/index.js';
import { redact } from './logging.js';

// OpenTelemetry traces, off unless an OTLP endpoint is configured. One trace follows an upload from
// the API request through the workflow it starts to the activities that workflow runs: the API's
// server span, the Temporal client's StartWorkflow span (its context travels in the workflow's
// headers), the workflow's RunWorkflow span (made in the sandbox and handed out through a sink),
// StartActivity and RunActivity spans. Spans leave in batches over OTLP/HTTP (JSON); stop() flushes.

const require = createRequire(import.meta.url);

/** The workflow interceptors module bundled into the sandbox when tracing is on. */
export const WORKFLOW_TRACING_MODULE = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');
/** A name only a bundle with the workflow tracing interceptors contains. */
const BUNDLE_MARKER = 'OpenTelemetryInboundInterceptor';

export interface Tracing {
  tracer: Tracer;
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** Interceptors for every Temporal Client (starts, signals, updates carry the trace). */
  clientInterceptors: WorkflowClientInterceptor[];
  /** The worker's activity interceptors: a span per activity, its trace id on its log lines. */
  activityInterceptors: ActivityInterceptorsFactory[];
  /** The sink the sandbox's workflow spans leave through. */
  workflowSinks: InjectedSinks<Record<string, never>>;
  /** Hono middleware: a server span per request, continuing an incoming W3C traceparent. */
  http: MiddlewareHandler;
  /** Ends tracing: exports what is buffered, then unregisters the global provider. */
  shutdown(): Promise<void>;
}

/** The trace id of the active span, when tracing is on and a span is active. */
export function activeTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}

/** Whether a built workflow bundle carries the workflow tracing interceptors. */
export function bundleHasTracing(code: string): boolean {
  return code.includes(BUNDLE_MARKER);
}

const headerGetter: TextMapGetter<Headers> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: (carrier) => [...carrier.keys()],
};

/** Probes and scrapes every few seconds: answered without a span, or they would bury the traces. */
const UNTRACED = new Set(['/healthz', '/metrics']);

function httpMiddleware(tracer: Tracer): MiddlewareHandler {
  return async (c, next) => {
    if (UNTRACED.has(c.req.path)) return next();
    const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headerGetter);
    const url = new URL(c.req.url);
    // Named by the route template once routing has happened; the method alone until then.
    const span: Span = tracer.startSpan(
      c.req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': c.req.method,
          'url.path': url.pathname,
          'url.scheme': url.protocol.replace(':', ''),
          'server.address': url.hostname,
          ...(url.port ? { 'server.port': Number(url.port) } : {}),
          ...(c.req.header('user-agent') ? { 'user_agent.original': c.req.header('user-agent')! } : {}),
        },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), () => next());
    } finally {
      const matched = routePath(c, -1);
      const route = matched.endsWith('*') ? undefined : matched;
      if (route) {
        span.updateName(`${c.req.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      const status = c.res.status;
      span.setAttribute('http.response.status_code', status);
      const requestId = c.get('requestId') as string | undefined;
      if (requestId) span.setAttribute('ctem.request_id', requestId);
      const principal = c.get('principal') as { id?: string } | undefined;
      if (principal?.id) span.setAttribute('enduser.id', principal.id);
      if (status >= 500) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        if (c.error) span.recordException(c.error);
      }
      span.end();
    }
  };
}

type Attributes = Record<string, unknown>;

function redactAttributes(attributes: Attributes | undefined): void {
  if (!attributes) return;
  for (const [key, value] of Object.entries(attributes)) {
    if (typeof value === 'string') attributes[key] = redact(value);
    else if (Array.isArray(value)) attributes[key] = value.map((v: unknown) => (typeof v === 'string' ? redact(v) : v));
  }
}

/**
 * Spans pass the log lines' redaction on their way out: a configured secret in a path, an error
 * message or an exception event is replaced before the span is batched for export.
 */
class RedactingSpanProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}
  onStart(...args: Parameters<SpanProcessor['onStart']>): void {
    this.inner.onStart(...args);
  }
  onEnd(span: ReadableSpan): void {
    redactAttributes(span.attributes as Attributes);
    for (const event of span.events ?? []) redactAttributes(event.attributes as Attributes | undefined);
    if (span.status?.message) (span.status as { message?: string }).message = redact(span.status.message);
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/**
 * The activity's trace id on its log lines, including the SDK's own "Activity failed", which is
 * written after the activity's span has ended (OpenTelemetry's outbound interceptor only sees a
 * span that is still active).
 */
function activityTraceIds(): ActivityInterceptorsFactory {
  return () => {
    let traceId: string | undefined;
    const inbound: ActivityInboundCallsInterceptor = {
      execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
        traceId = activeTraceId();
        return next(input);
      },
    };
    const outbound: ActivityOutboundCallsInterceptor = {
      getLogAttributes(input: GetLogAttributesInput, next: Next<ActivityOutboundCallsInterceptor, 'getLogAttributes'>) {
        return next(traceId && !('trace_id' in input) ? { traceId, ...input } : input);
      },
    };
    return { inbound, outbound };
  };
}

/**
 * Starts tracing for this process: a global tracer provider (W3C trace context, async context
 * tracking) whose spans a BatchSpanProcessor sends to `config.url`. `role` names the service when
 * OTEL_SERVICE_NAME does not.
 */
export function startTracing(config: TracingConfig, role: { api: boolean; worker: boolean }): Tracing {
  const serviceName = config.serviceName ?? (role.api && role.worker ? 'ctem' : role.api ? 'ctem-api' : 'ctem-worker');
  const resource = Resource.default()
    .merge(envDetectorSync.detect())
    .merge(new Resource({ 'service.name': serviceName }));
  const exporter = new OTLPTraceExporter({ url: config.url, headers: config.headers });
  const spanProcessor = new RedactingSpanProcessor(new BatchSpanProcessor(exporter));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  const tracer = provider.getTracer('ctem');
  return {
    tracer,
    resource,
    spanProcessor,
    clientInterceptors: [new OpenTelemetryWorkflowClientInterceptor({ tracer })],
    activityInterceptors: [
      (ctx: ActivityContext) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
      activityTraceIds(),
    ],
    workflowSinks: { exporter: makeWorkflowExporter(spanProcessor, resource) } as unknown as InjectedSinks<Record<string, never>>,
    http: httpMiddleware(tracer),
    async shutdown() {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
}
