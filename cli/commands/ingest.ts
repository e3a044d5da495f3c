import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type { Config } from '../../config/index.js';
import { platformApi } from './platform-api.js';

export interface IngestArgs {
  file?: string;
  format?: string;
  source?: string;
  target?: string;
  owner?: string;
  complete?: string;
  vantage?: string;
  wait: boolean;
}


/** `ctem ingest FILE`: uploads a report to the running platform and waits for its discovery run. */
export async function ingestCommand(config: Config, args: IngestArgs): Promise<number> {
  if (!args.file) {
    console.error('usage: ctem ingest FILE [--format F] [--source S] [--target NAME] [--owner USER] [--complete true|false] [--vantage internet|internal] [--no-wait]');
    return 2;
  }
  if (existsSync(args.file) && statSync(args.file).isDirectory()) {
    console.error(`${args.file}: is a directory`);
    return 1;
  }
  if (!existsSync(args.file) || !statSync(args.file).isFile()) {
    console.error(`${basename(args.file)}: file not found`);
    return 1;
  }
  const { url, token } = platformApi(config);
  const query = new URLSearchParams({ filename: basename(args.file) });
  for (const key of ['format', 'source', 'target', 'owner', 'complete', 'vantage'] as const) if (args[key]) query.set(key, args[key]!);
  const headers = { authorization: `Bearer ${token}` };
  const res = await fetch(`${url}/api/v1/scans?${query}`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: Readable.toWeb(createReadStream(args.file)) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const body = (await res.json()) as { scanId?: string; workflowId?: string; error?: { message: string } };
  if (res.status !== 202) {
    console.error(body.error?.message ?? `upload failed with HTTP ${res.status}`);
    return 1;
  }
  console.error(`scan ${body.scanId} accepted (workflow ${body.workflowId})`);
  if (!args.wait) return 0;
  for (;;) {
    const scan = (await (await fetch(`${url}/api/v1/scans/${body.scanId}`, { headers })).json()) as { status: string; counts: object; error?: string };
    if (scan.status === 'completed') {
      console.log(JSON.stringify(scan.counts));
      return 0;
    }
    if (scan.status === 'failed') {
      console.error(scan.error);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
