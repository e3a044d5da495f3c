import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type { Config } from '../../config/index.js';
import { uploadProgress, waitProgress, wantsProgress } from '../progress.js';
import { warningLine, type ParseWarning } from '../../discovery/connectors/common/warnings.js';
import { apiFailure, callApi, platformApi } from './platform-api.js';

export interface IngestArgs {
  file?: string;
  format?: string;
  source?: string;
  target?: string;
  owner?: string;
  complete?: string;
  vantage?: string;
  /** Fail the scan on the first parse warning instead of storing it. */
  strict?: boolean;
  wait: boolean;
  /** Draw progress on stderr; the default is on when stderr is a terminal. */
  progress?: boolean;
}

/** `ctem ingest FILE`: uploads a report to the running platform and waits for its discovery run. */
export async function ingestCommand(config: Config, args: IngestArgs): Promise<number> {
  if (!args.file) {
    console.error('usage: ctem ingest FILE [--format F] [--source S] [--target NAME] [--owner USER] [--complete true|false] [--vantage internet|internal] [--strict] [--no-wait]');
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
  const api = platformApi(config);
  const query = new URLSearchParams({ filename: basename(args.file) });
  for (const key of ['format', 'source', 'target', 'owner', 'complete', 'vantage'] as const) if (args[key]) query.set(key, args[key]!);
  if (args.strict) query.set('strict', 'true');
  const show = wantsProgress(args.progress);
  const sending = uploadProgress(createReadStream(args.file), `uploading ${basename(args.file)}`, statSync(args.file).size, show);
  const upload = await callApi(api, `/api/v1/scans?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Readable.toWeb(sending.stream) as ReadableStream,
    duplex: 'half',
  }).finally(() => sending.stop());
  if (upload.status !== 202) return apiFailure(`upload of ${basename(args.file)}`, upload);
  const body = upload.body as { scanId: string; workflowId: string };
  console.error(`scan ${body.scanId} accepted (workflow ${body.workflowId})`);
  if (!args.wait) return 0;
  const waiting = waitProgress(`ingesting scan ${body.scanId}`, show);
  for (;;) {
    const r = await callApi(api, `/api/v1/scans/${body.scanId}`);
    const scan = r.body as { status: string; counts: object; warnings?: ParseWarning[]; error?: string };
    if (r.ok) waiting.update(scan.status);
    if (!r.ok || scan.status !== 'running') waiting.stop();
    if (!r.ok) return apiFailure(`scan ${body.scanId}`, r);
    if (scan.status === 'completed') {
      for (const w of scan.warnings ?? []) console.error(warningLine(w));
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
