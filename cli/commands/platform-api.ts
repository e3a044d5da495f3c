import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/index.js';

/** The running platform's API and token: CTEM_API_URL / CTEM_API_TOKEN, else the local data dir's. */
export function platformApi(config: Config): { url: string; token: string } {
  const url = (process.env.CTEM_API_URL ?? `http://127.0.0.1:${config.port}`).replace(/\/$/, '');
  const secrets = join(config.dataDir, 'secrets.json');
  const token = config.apiToken ?? (existsSync(secrets) ? (JSON.parse(readFileSync(secrets, 'utf8')) as { apiToken: string }).apiToken : undefined);
  if (!token) throw new Error(`no API token: set CTEM_API_TOKEN (none generated in ${config.dataDir})`);
  return { url, token };
}
