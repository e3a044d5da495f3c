import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { uploadProgress, wantsProgress } from '../progress.js';
import type { Config } from '../../config/index.js';
import { platformApi } from './platform-api.js';
import { detectFeedKind, FEED_LABEL, type FeedKind } from '../../prioritization/feeds/parse.js';
import { packDirectory } from '../../prioritization/feeds/archive.js';
import { isCveRecordFile } from '../../prioritization/feeds/cve-json5.js';

// `ctem intel ...`: threat-intel feeds through the running platform's API, so the same checks,
// locks and re-scoring apply as for any other import.

const USAGE = `usage: ctem intel import FILE|DIRECTORY [--kind epss|kev|cve] [--stage-only] [--force check,...] [--as-of DATE]
       ctem intel list [--kind epss|kev|cve]
       ctem intel promote KIND VERSION [--force check,...] [--as-of DATE]
       ctem intel fetch KIND`;

interface Check {
  check: string;
  ok: boolean;
  detail: string;
  overridden?: boolean;
}

interface FeedResult {
  kind: FeedKind;
  version: string;
  rows: number;
  status: string;
  validation: Check[];
  publishedAt: string | null;
  imported?: boolean;
  activated?: boolean;
  origin?: string | null;
  rescore?: { started: boolean; workflowId?: string; reason?: string };
  changes?: { new: number; changed: number; unchanged: number; removed: number; against: string | null };
  error?: { code: string; message: string };
  warnings?: string[];
}

const KINDS: readonly string[] = ['epss', 'kev', 'cve'];
const isKind = (kind: string | undefined): kind is FeedKind => kind !== undefined && KINDS.includes(kind);


function mark(c: Check): string {
  if (c.ok) return 'ok        ';
  return c.overridden ? 'overridden' : 'FAILED    ';
}

function printResult(r: FeedResult): void {
  const outcome = r.imported === false && !r.activated ? `${r.status} (already known)` : r.status;
  console.log(`${FEED_LABEL[r.kind]} ${r.version}: ${outcome}`);
  console.log(`  rows       ${r.rows}`);
  const c = r.changes;
  if (c) console.log(`  changes    ${c.against ? `${c.new} new, ${c.changed} changed, ${c.unchanged} unchanged, ${c.removed} removed against ${c.against}` : 'all new (no active version)'}`);
  if (r.publishedAt) console.log(`  published  ${r.publishedAt}`);
  for (const c of r.validation) console.log(`  ${mark(c)} ${c.check.padEnd(10)} ${c.detail}`);
  if (r.rescore) console.log(`  rescore    ${r.rescore.started ? `started (${r.rescore.workflowId})` : (r.rescore.reason ?? 'not started')}`);
  for (const w of r.warnings ?? []) console.error(`warning: ${w}`);
}

async function call(config: Config, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const { url, token } = platformApi(config);
  const res = await fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = { error: { code: 'http', message: `HTTP ${res.status}: ${text.slice(0, 200)}` } };
  }
  return { status: res.status, body };
}

const errorOf = (body: unknown, status: number) => (body as { error?: { message?: string } })?.error?.message ?? `HTTP ${status}`;

/** Prints the outcome; exit 1 with the failed checks when the platform refused the version. */
function report(status: number, body: unknown): number {
  if (status === 200 || status === 422) {
    const result = body as FeedResult;
    printResult(result);
    if (status === 422) {
      const failed = result.validation.filter((c) => !c.ok && !c.overridden);
      console.error(`${result.status === 'rejected' ? 'rejected' : 'not promoted'}: failed checks: ${failed.map((c) => c.check).join(', ')}`);
      for (const c of failed) console.error(`  ${c.check}: ${c.detail}`);
      console.error('(to accept on purpose: --force ' + failed.map((c) => c.check).join(',') + ')');
      return 1;
    }
    return 0;
  }
  console.error(errorOf(body, status));
  return 1;
}

function validationQuery(values: { force?: string | undefined; 'as-of'?: string | undefined }, query: URLSearchParams) {
  if (values.force) query.set('force', values.force);
  if (values['as-of']) query.set('asOf', values['as-of']);
}

export async function intelCommand(config: Config, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      kind: { type: 'string' },
      'stage-only': { type: 'boolean', default: false },
      force: { type: 'string' },
      'as-of': { type: 'string' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
  });
  if (values.kind !== undefined && !isKind(values.kind)) {
    console.error(`--kind: expected epss, kev or cve, got ${values.kind}`);
    return 2;
  }

  if (sub === 'import') {
    const file = positionals[0];
    if (!file) {
      console.error(USAGE);
      return 2;
    }
    const directory = existsSync(file) && statSync(file).isDirectory();
    if (!existsSync(file) || (!directory && !statSync(file).isFile())) {
      console.error(`${basename(file)}: file not found`);
      return 1;
    }
    const kind = (values.kind as FeedKind | undefined) ?? (await detectFeedKind(file));
    if (!kind) {
      console.error(`${basename(file)}: neither a FIRST EPSS CSV, a CISA KEV JSON catalog, nor a directory or archive of CVE records; say which with --kind`);
      return 1;
    }
    if (directory && kind !== 'cve') {
      console.error(`${basename(file)}: a directory can only hold CVE records (--kind cve)`);
      return 1;
    }
    const query = new URLSearchParams({ filename: basename(file) });
    if (values['stage-only']) query.set('stage', 'true');
    validationQuery(values, query);
    // A checkout of CVE records travels as a gzipped tar of its record files, streamed as it is read.
    const content = directory ? packDirectory(file, isCveRecordFile) : createReadStream(file);
    const sending = uploadProgress(content, `uploading ${basename(file)}`, directory ? undefined : statSync(file).size, wantsProgress(values['no-progress'] ? false : values.progress));
    const { status, body } = await call(config, `/api/v1/intel/${kind}?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.toWeb(sending.stream) as ReadableStream,
      duplex: 'half',
    } as RequestInit).finally(() => sending.stop());
    return report(status, body);
  }

  if (sub === 'promote') {
    const [kind, version] = positionals;
    if (!isKind(kind) || !version) {
      console.error(USAGE);
      return 2;
    }
    const query = new URLSearchParams();
    validationQuery(values, query);
    const { status, body } = await call(config, `/api/v1/intel/feeds/${kind}/${encodeURIComponent(version)}/promote?${query}`, { method: 'POST' });
    return report(status, body);
  }

  if (sub === 'list') {
    const query = values.kind ? `?kind=${values.kind}` : '';
    const { status, body } = await call(config, `/api/v1/intel/feeds${query}`);
    if (status !== 200) {
      console.error(errorOf(body, status));
      return 1;
    }
    const { items, attribution } = body as {
      items: Array<{ kind: FeedKind; version: string; status: string; rows: number; publishedAt: string | null; origin: string | null; stored: boolean; validation: Check[] }>;
      attribution: string;
    };
    const rows = items.map((v) => [
      FEED_LABEL[v.kind],
      v.version,
      v.status,
      // Rejected versions never keep rows; for retired ones it says retention removed them.
      String(v.rows) + (v.status === 'retired' && !v.stored && v.rows > 0 ? ' (rows deleted)' : ''),
      v.publishedAt ?? '-',
      v.validation.filter((c) => !c.ok).map((c) => `${c.check}${c.overridden ? ' (overridden)' : ''}`).join(',') || '-',
      v.origin ?? '-',
    ]);
    const header = ['FEED', 'VERSION', 'STATUS', 'ROWS', 'PUBLISHED', 'FAILED CHECKS', 'ORIGIN'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const line of [header, ...rows]) console.log(line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
    console.log(`\nData: ${attribution}`);
    return 0;
  }

  if (sub === 'fetch') {
    const kind = positionals[0];
    if (!isKind(kind)) {
      console.error(USAGE);
      return 2;
    }
    const { status, body } = await call(config, `/api/v1/intel/feeds/${kind}/runs`, { method: 'POST' });
    if (status !== 202) {
      console.error(errorOf(body, status));
      return 1;
    }
    console.log(`fetching ${FEED_LABEL[kind]} (workflow ${(body as { workflowId: string }).workflowId}); see ctem intel list`);
    return 0;
  }

  console.error(USAGE);
  return sub === undefined || sub === 'help' ? 0 : 2;
}
