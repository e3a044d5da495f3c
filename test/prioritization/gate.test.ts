import { describe, expect, it } from 'vitest';
import type { NormalizedFinding } from '../../discovery/model.js';
import { distinctFindings, evaluateGate, exceptionFor, GateInputError, parseBlockRule, requestedAssetContext, type GateIntel } from '../../prioritization/gate.js';
import { defaultPolicy } from '../../prioritization/policy.js';

// The gate's own rules, without a platform: the block rule's syntax, which finding of a report the
// estate would keep when the report lists one twice, and which exception covers a finding. Whether
// the gate decides as scoring does is test/fronts/gate.test.ts (and the corpus e2e test).

const policy = defaultPolicy();
const asset = { assetKey: 'image:shop/api:2', kind: 'container_image' as const, name: 'shop/api:2' };
const finding = (over: Partial<NormalizedFinding>): NormalizedFinding => ({
  asset, kind: 'vulnerability', issueId: 'CVE-2021-44228', component: 'log4j-core', version: '2.14.1', location: '', severity: 'critical', ...over,
});
const intel: GateIntel = {
  versions: { epss: '2026-11-01', kev: '2026.11.01', cve: null },
  epss: new Map([['CVE-2021-44228', { epss: 0.94, percentile: 0.99 }]]),
  kev: new Map([['CVE-2021-44228', { dateAdded: '2021-12-10', knownRansomware: true }]]),
  records: new Map(),
};

describe('block rules', () => {
  it('reads act, attend and kev joined with + or a comma, in any case, and defaults to act', () => {
    expect(parseBlockRule(undefined)).toEqual(['act']);
    expect(parseBlockRule('')).toEqual(['act']);
    expect(parseBlockRule('act+attend')).toEqual(['act', 'attend']);
    expect(parseBlockRule('KEV, act')).toEqual(['act', 'kev']);
  });

  it('names the rule it does not know and the ones it does', () => {
    expect(() => parseBlockRule('act+critical')).toThrow(GateInputError);
    expect(() => parseBlockRule('act+critical')).toThrow('--block: unknown block rule "critical"; use act, attend or kev, joined with + (e.g. act+attend, act+kev)');
  });
});

describe('a report as the estate would hold it', () => {
  it('keeps one finding per identity, the one with the highest CVSS score, then the one with a vector', () => {
    const low = finding({ cvssScore: 5 });
    const high = finding({ cvssScore: 9.8 });
    const vector = finding({ cvssScore: 9.8, cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H' });
    const other = finding({ location: 'app/lib/log4j-core-2.14.1.jar' });
    expect(distinctFindings([low, high, vector, other])).toEqual([vector, other]);
    expect(distinctFindings([vector, high])).toEqual([vector]);
  });

  it('decides a report with a finding listed twice once', () => {
    const r = evaluateGate(policy, intel, [finding({ cvssScore: 5 }), finding({ cvssScore: 10 })], () => requestedAssetContext(policy, { key: asset.assetKey, name: asset.name }, {}),
      { block: ['act'], honourExceptions: false });
    expect(r.counts).toMatchObject({ findings: 1, act: 1, blocking: 1 });
    expect(r.findings[0]!.cvss).toBe(10);
  });
});

describe('exceptions', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  const exceptions = [
    { issueId: 'CVE-2021-44228', component: 'log4j-core', reason: 'rebuilt image ships on Friday', expiresAt: '2026-12-11T00:00:00.000Z' },
    { issueId: 'CVE-2022-22965', reason: 'no data binding here', expiresAt: '2026-12-01T00:00:00.000Z' },
  ];

  it('covers the same vulnerability on the same component (or on any, when none is named) until it expires', () => {
    expect(exceptionFor(exceptions, { issueId: 'CVE-2021-44228', component: 'log4j-core' }, now)).toBe(exceptions[0]);
    expect(exceptionFor(exceptions, { issueId: 'CVE-2021-44228', component: 'log4j-api' }, now)).toBeUndefined();
    expect(exceptionFor(exceptions, { issueId: 'CVE-2022-22965', component: 'spring-beans' }, now)).toBeUndefined();
    expect(exceptionFor(exceptions, { issueId: 'CVE-2022-22965', component: 'spring-beans' }, new Date('2026-11-30T00:00:00Z'))).toBe(exceptions[1]);
  });

  it('lets a finding pass only when exceptions are honoured, and says so', () => {
    const ctx = () => requestedAssetContext(policy, { key: asset.assetKey, name: asset.name }, {});
    const strict = evaluateGate(policy, intel, [finding({})], ctx, { block: ['kev'], honourExceptions: false }, () => exceptions, now);
    expect(strict).toMatchObject({ verdict: 'block', counts: { blocking: 1, excepted: 0 } });
    const honoured = evaluateGate(policy, intel, [finding({})], ctx, { block: ['kev'], honourExceptions: true }, () => exceptions, now);
    expect(honoured).toMatchObject({ verdict: 'pass', counts: { blocking: 0, excepted: 1 } });
    expect(honoured.findings[0]).toMatchObject({ matched: ['kev'], blocking: false, exception: exceptions[0] });
  });
});
