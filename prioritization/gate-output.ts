import { createHash } from 'node:crypto';
import { TIERS } from './policy.js';
import { decidingFactors, type GateFinding, type GateResult } from './gate.js';

// What the gate says, for people (a summary for a CI log) and for code-scanning UIs (SARIF 2.1.0).
// Both fronts (the API's `format=sarif`, `ctem gate --sarif`) use these, so a gate run through the
// platform and one standalone print the same.

const fixText = (f: GateFinding) => `${f.version} -> ${f.fixedVersion ?? 'no fix known'}`;
const days = (d: number) => `${Number(d.toFixed(2))} day${d === 1 ? '' : 's'}`;

/** The verdict line, the inputs, the counts by tier, then one block per blocking (and excepted) finding with the factors that decided it. */
export function gateSummary(r: GateResult): string {
  const lines: string[] = [];
  const rule = `${r.rule.block.join('+')}${r.rule.honourExceptions ? ', exceptions honoured' : ''}`;
  lines.push(r.verdict === 'block'
    ? `BLOCKED: ${r.counts.blocking} of ${r.counts.findings} finding${r.counts.findings === 1 ? '' : 's'} block (block rule: ${rule})`
    : `PASSED: no finding blocks (block rule: ${rule}; ${r.counts.findings} finding${r.counts.findings === 1 ? '' : 's'})`);
  lines.push(`policy ${r.policy}; FIRST EPSS ${r.feeds.epss ?? 'none'}; CISA KEV ${r.feeds.kev ?? 'none'}; CVE records ${r.feeds.cve ?? 'none'}`);
  for (const a of r.assets) {
    const about = [a.source === 'platform' ? 'context from the platform' : 'context from the request', a.owner ? `owner ${a.owner}` : '', a.businessService ? `business service ${a.businessService}` : '']
      .filter(Boolean).join(', ');
    lines.push(`asset ${a.name} (${about})`);
  }
  lines.push(`tiers: ${TIERS.map((t) => `${t} ${r.counts[t]}`).join(', ')}${r.counts.excepted ? `; excepted ${r.counts.excepted}` : ''}`);
  for (const f of r.findings.filter((x) => x.blocking || x.exception)) {
    lines.push('');
    const where = f.path ? ` (${f.path})` : '';
    lines.push(`${f.blocking ? 'BLOCKS' : 'EXCEPTED'} ${f.issueId}  ${f.component} ${fixText(f)}${where}`);
    lines.push(`  tier ${f.tier}, score ${f.score}, due in ${days(f.dueDays)}; meets ${f.matched.join(', ')}${f.inKev && !f.matched.includes('kev') ? '; in CISA KEV' : ''}`);
    if (f.exception) {
      const e = f.exception;
      lines.push(`  exception${e.ticket ? ` on ticket ${e.ticket}` : ''} until ${e.expiresAt.slice(0, 10)}${e.approver ? `, approved by ${e.approver}` : ''}: ${e.reason}`);
    }
    for (const x of decidingFactors(f)) lines.push(`  - ${x.factor}: ${x.effect}`);
  }
  return lines.join('\n') + '\n';
}

/** A SARIF 2.1.0 log: one rule per vulnerability id, one result per finding (error when it blocks, warning otherwise). */
export function gateSarif(r: GateResult, toolVersion: string): Record<string, unknown> {
  const ids = [...new Set(r.findings.map((f) => f.issueId))].sort();
  const index = new Map(ids.map((id, i) => [id, i]));
  const first = new Map<string, GateFinding>();
  for (const f of r.findings) {
    const had = first.get(f.issueId);
    if (!had || (f.cvss ?? -1) > (had.cvss ?? -1)) first.set(f.issueId, f);
  }
  const assetName = r.assets.length === 1 ? r.assets[0]!.name : '';
  const rules = ids.map((id) => {
    const f = first.get(id)!;
    const help = /^CVE-\d{4}-\d+$/.test(id) ? `https://www.cve.org/CVERecord?id=${id}` : /^GHSA-/.test(id) ? `https://github.com/advisories/${id}` : undefined;
    return {
      id,
      name: id.replace(/[^A-Za-z0-9]/g, ''),
      shortDescription: { text: f.title ?? id },
      fullDescription: { text: f.title ? `${id}: ${f.title}` : id },
      ...(help ? { helpUri: help } : {}),
      help: { text: `Upgrade ${f.component} to ${f.fixedVersion ?? 'a fixed version (none known yet)'}.` },
      defaultConfiguration: { level: 'warning' },
      // GitHub code scanning ranks security alerts by this (0-10).
      properties: { tags: ['security', 'vulnerability'], ...(f.cvss !== null ? { 'security-severity': f.cvss.toFixed(1) } : {}) },
    };
  });
  const results = r.findings.map((f) => {
    const decided = decidingFactors(f).map((x) => `${x.factor}: ${x.effect}`).join('; ');
    const verdict = f.blocking ? `blocks (${f.matched.join(', ')})` : f.exception ? `excepted until ${f.exception.expiresAt.slice(0, 10)}: ${f.exception.reason}` : 'does not block';
    // A relative reference: an image name's colon (alpine:3.14) would otherwise read as a URI scheme.
    const uri = (f.path || assetName || f.component).split('/').map(encodeURIComponent).join('/');
    return {
      ruleId: f.issueId,
      ruleIndex: index.get(f.issueId)!,
      level: f.blocking ? 'error' : 'warning',
      message: { text: `${f.issueId} in ${f.component} ${fixText(f)}: tier ${f.tier}, score ${f.score}, ${verdict}. ${decided}` },
      locations: [{ physicalLocation: { artifactLocation: { uri }, region: { startLine: 1 } } }],
      partialFingerprints: { 'ctemFinding/v1': createHash('sha256').update([f.issueId, f.component, f.version, f.path].join('\u001f')).digest('hex') },
      properties: { tier: f.tier, score: f.score, blocking: f.blocking, component: f.component, installedVersion: f.version, fixedVersion: f.fixedVersion },
    };
  });
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'ctem gate', version: toolVersion, rules } },
      results,
      properties: { verdict: r.verdict, policy: r.policy, feeds: r.feeds, blockRule: r.rule.block, honourExceptions: r.rule.honourExceptions },
    }],
  };
}
