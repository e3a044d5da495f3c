import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Every error the API returns has this one shape. */
export function problem<S extends ContentfulStatusCode>(c: Context, status: S, code: string, message: string, details?: unknown) {
  const error: { code: string; message: string; details?: never } = { code, message, ...(details !== undefined ? { details: details as never } : {}) };
  return c.json({ error }, status);
}
