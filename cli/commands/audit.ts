import { parseArgs } from 'node:util';
import type { AuditEntry, AuditVerification } from '../../access/audit-trail.js';
import type { Config } from '../../config/index.js';
import { apiFailure, callApi, platformApi } from './platform-api.js';

// `ctem audit list|verify`: the running platform's audit trail (GET /api/v1/audit) and its hash
// chain's check (GET /api/v1/audit/verify; exit 1 when it is broken, so a cron job can alert).

const USAGE = `usage: ctem audit list [--actor A] [--action PREFIX] [--target T] [--outcome allowed|denied|failed]
                      [--since ISO] [--until ISO] [--limit N] [--after CURSOR] [--json]
       ctem audit verify [--json]`;

const FILTERS = ['actor', 'action', 'target', 'outcome', 'since', 'until', 'limit', 'after'] as const;

export async function auditCommand(config: Config, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'boolean', default: false }, ...Object.fromEntries(FILTERS.map((f) => [f, { type: 'string' as const }])) },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const api = platformApi(config);
  if (positionals[0] === 'verify' && positionals.length === 1) {
    const r = await callApi(api, '/api/v1/audit/verify');
    if (!r.ok) return apiFailure('audit verify', r);
    const v = r.body as AuditVerification;
    if (values.json) console.log(JSON.stringify(v, null, 2));
    else if (v.ok) console.log(`audit trail intact: ${v.checked} entries checked${v.firstId ? ` (ids ${v.firstId}-${v.lastId})` : ''}${/^0+$/.test(v.anchor) ? '' : `, from the pruning anchor ${v.anchor.slice(0, 16)}…`}`);
    else console.log(`audit trail BROKEN at entry ${v.broken!.id}: ${v.broken!.reason} (${v.checked} entries before it hold)`);
    return v.ok ? 0 : 1;
  }
  if (positionals[0] === 'list' && positionals.length === 1) {
    const query = new URLSearchParams();
    for (const f of FILTERS) {
      const value = (values as Record<string, unknown>)[f];
      if (typeof value === 'string') query.set(f, value);
    }
    const r = await callApi(api, `/api/v1/audit${query.size ? `?${query}` : ''}`);
    if (!r.ok) return apiFailure('audit list', r);
    const page = r.body as { items: AuditEntry[]; next: string | null; estimate: { count: number; exact: boolean } };
    if (values.json) {
      console.log(JSON.stringify(page, null, 2));
      return 0;
    }
    for (const e of page.items) {
      console.log([e.at.slice(0, 19).replace('T', ' '), e.outcome.padEnd(7), e.channel.padEnd(7), e.actorName, e.action, e.target ?? '-', e.requestId ?? '-'].join('  '));
    }
    console.log(`${page.items.length} of ${page.estimate.exact ? '' : 'about '}${page.estimate.count} entries${page.next ? `; next page: --after ${page.next}` : ''}`);
    return 0;
  }
  console.error(USAGE);
  return 2;
}
