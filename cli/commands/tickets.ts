import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import type { MobilizationAudit } from '../../mobilization/audit.js';
import { platformApi } from './platform-api.js';

// `ctem tickets audit`: does every urgent exposure reach a person, in one ticket per real fix?
// Read from the running platform's API; exits 1 when an urgent finding reaches no one, so it can
// gate a pipeline or a cron job.

const USAGE = 'usage: ctem tickets audit [--json]';

export async function ticketsCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
  if (positionals[0] !== 'audit') {
    console.error(USAGE);
    return 2;
  }
  const { url, token } = platformApi(config);
  const res = await fetch(`${url}/api/v1/metrics/mobilization`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    console.error(`audit failed: HTTP ${res.status} ${await res.text()}`);
    return 1;
  }
  const audit = (await res.json()) as MobilizationAudit;
  if (values.json) {
    console.log(JSON.stringify(audit, null, 2));
    return audit.unreached ? 1 : 0;
  }
  const t = audit.tickets;
  const lines = [
    `urgent (act/attend) findings   ${audit.urgentFindings}`,
    `  on a fix ticket              ${audit.onFixTicket}`,
    `  on a mitigation ticket       ${audit.onMitigationTicket}`,
    `  in the orphan queue          ${audit.inOrphanQueue}  (assigned to the fallback owner)`,
    `  reaching no one              ${audit.unreached}${audit.unreached ? '  <- must be 0' : ''}`,
    ...audit.unreachedSample.map((s) => `    ${s.issueId} (${s.tier}) on ${s.assetKey}: ${s.why}`),
    `open tickets                   ${t.open}  (${Object.entries(t.byAction).map(([a, n]) => `${a} ${n}`).join(', ') || 'none'})`,
    `  most per image and layer     ${t.maxPerImageLayer}`,
    `  most per host and product    ${t.maxPerHostProduct}`,
    `  most per owner's patch run   ${t.maxPerOwnerPatchRun}`,
    `  planned per package (older)  ${t.legacyPerPackage}`,
  ];
  console.log(lines.join('\n'));
  return audit.unreached ? 1 : 0;
}
