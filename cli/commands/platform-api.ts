import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/index.js';

/** A secret the local platform generated in its data dir (secrets.json, readable by its owner only). */
export function generatedSecret(config: Config, name: 'apiToken' | 'simulatorPassword'): string | undefined {
  const secrets = join(config.dataDir, 'secrets.json');
  return existsSync(secrets) ? (JSON.parse(readFileSync(secrets, 'utf8')) as Record<string, string | undefined>)[name] : undefined;
}

/** The running platform's API and token: CTEM_API_URL / CTEM_API_TOKEN, else the local data dir's. */
export function platformApi(config: Config): { url: string; token: string } {
  const url = (process.env.CTEM_API_URL ?? `http://127.0.0.1:${config.port}`).replace(/\/$/, '');
  const token = config.apiToken ?? generatedSecret(config, 'apiToken');
  if (!token) throw new Error(`no API token: set CTEM_API_TOKEN (none generated in ${config.dataDir})`);
  return { url, token };
}

export interface ApiResult {
  ok: boolean;
  status: number;
  body: unknown;
}

/**
 * One request to the platform's API with its token; the body parsed as JSON when it is. A platform
 * that does not answer is named with its URL and what to do, not "fetch failed".
 */
export async function callApi(api: { url: string; token: string }, path: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<ApiResult> {
  let res: Response;
  try {
    res = await fetch(`${api.url}${path}`, { ...init, headers: { authorization: `Bearer ${api.token}`, ...(init.headers as Record<string, string> | undefined) } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`the platform at ${api.url} did not answer (${cause?.code ?? cause?.message ?? (err as Error).message}): start it with \`npm start\`, or point CTEM_API_URL at it`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  return { ok: res.ok, status: res.status, body };
}

/** Prints what the platform said about a failed request (its error message and details); returns the exit code. */
export function apiFailure(what: string, r: ApiResult): number {
  const error = typeof r.body === 'object' && r.body !== null ? (r.body as { error?: { message?: string; details?: unknown } }).error : undefined;
  const details = error?.details ? `: ${JSON.stringify(error.details)}` : '';
  console.error(`${what} failed: HTTP ${r.status}: ${error?.message ?? String(r.body).slice(0, 500)}${details}`);
  return 1;
}
