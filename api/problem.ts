import { trace } from '@opentelemetry/api';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * Every error the API returns has this one shape. With tracing on, it also names the request's trace
 * (`traceId`), so a caller's report leads to the request's spans and log line.
 */
export function problem<S extends ContentfulStatusCode>(c: Context, status: S, code: string, message: string, details?: unknown) {
  const span = trace.getActiveSpan()?.spanContext();
  const traceId = span && trace.isSpanContextValid(span) ? span.traceId : undefined;
  const error: { code: string; message: string; details?: never; traceId?: string } = {
    code,
    message,
    ...(details !== undefined ? { details: details as never } : {}),
    ...(traceId ? { traceId } : {}),
  };
  return c.json({ error }, status);
}
