import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Scanner-observed open ports: a network scan declared with vantage `internet` is evidence of which
// ports the internet reaches, beside firewall rules. Through the real upload path, discovery
// workflow, PostgreSQL and policy engine.

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => platform?.stop());

/** A Nessus report of one host with findings on the given ports (0: a local check). */
function nessus(host: string, ports: number[]): string {
  const items = ports.map(
    (port, i) => `<ReportItem port="${port}" svc_name="${port === 0 ? 'general' : 'www'}" protocol="tcp" severity="3" pluginID="${90000 + i}" pluginName="Check ${i} on ${port}" pluginFamily="General">
<cve>CVE-2024-${10000 + i}</cve><cvss3_base_score>7.5</cvss3_base_score><risk_factor>High</risk_factor><plugin_output>seen</plugin_output></ReportItem>`,
  );
  return `<?xml version="1.0" ?>
<NessusClientData_v2><Report name="edge" xmlns:cm="http://www.nessus.org/cm">
<ReportHost name="${host}"><HostProperties><tag name="host-ip">${host}</tag></HostProperties>
${items.join('\n')}
</ReportHost></Report></NessusClientData_v2>`;
}

async function scan(body: string, query: string): Promise<Record<string, number>> {
  const { scanId } = await json<{ scanId: string }>(platform.api(`/api/v1/scans?filename=edge.nessus&source=edge-scanner&${query}`, { method: 'POST', body }));
  const done = await eventually(
    async () => {
      const s = await json<{ status: string; counts: Record<string, number>; error?: string; vantage: string | null }>(platform.api(`/api/v1/scans/${scanId}`));
      return s.status === 'running' ? undefined : s;
    },
    { what: `scan ${scanId}` },
  );
  if (done.status !== 'completed') throw new Error(`scan failed: ${done.error}`);
  return done.counts;
}

async function host(name: string) {
  const [row] = await platform.database.sql<{ internet_facing: boolean | null; exposed_ports: string[] | null; source: string | null }[]>`
    select internet_facing, exposed_ports, attribute_sources->>'internet_facing' as source from assets where name = ${name}`;
  return row;
}

describe('scanner-observed open ports', () => {
  it('an internal scan says nothing about the internet', async () => {
    await scan(nessus('198.51.100.7', [443, 0]), 'vantage=internal');
    expect(await host('198.51.100.7')).toEqual({ internet_facing: null, exposed_ports: null, source: null });
  });

  it('an internet scan makes the ports it saw the asset’s exposure, and the policy says where that came from', async () => {
    const counts = await scan(nessus('203.0.113.10', [443, 8443, 0]), 'vantage=internet');
    expect(counts.observedPorts).toBe(2); // port 0 is a local check, not an open port
    expect(await host('203.0.113.10')).toEqual({ internet_facing: true, exposed_ports: ['443/tcp', '8443/tcp'], source: 'external scan' });

    const page = await json<{ items: Array<{ explanation: Array<{ factor: string; value: unknown; source?: string; effect?: string }> }> }>(
      platform.api('/api/v1/exposures?asset=203.0.113.10&internetFacing=true'),
    );
    expect(page.items.length).toBeGreaterThan(0);
    const exposed = page.items[0]!.explanation.find((f) => f.factor === 'publicly_exposed');
    expect(exposed).toMatchObject({ value: 'yes' });
    expect(exposed!.source).toMatch(/external scan/);
    expect(exposed!.effect).toMatch(/an internet-side scan saw 443\/tcp, 8443\/tcp open on 203\.0\.113\.10/);
  });

  it('a later internet scan replaces what this source saw: a closed port stops counting', async () => {
    await scan(nessus('203.0.113.10', [22, 0]), 'vantage=internet');
    expect(await host('203.0.113.10')).toMatchObject({ internet_facing: true, exposed_ports: ['22/tcp'] });
    await scan(nessus('203.0.113.10', [0]), 'vantage=internet');
    expect(await host('203.0.113.10')).toEqual({ internet_facing: false, exposed_ports: null, source: 'external scan' });
  });

  it('the same internet scan recorded twice leaves the same evidence', async () => {
    const report = nessus('203.0.113.11', [80]);
    await scan(report, 'vantage=internet');
    await scan(report, 'vantage=internet');
    const rows = await platform.database.sql`
      select o.port, o.source from observed_ports o join assets a on a.id = o.asset_id where a.name = '203.0.113.11'`;
    expect(rows.map((r) => `${r.source} ${r.port}`)).toEqual(['edge-scanner 80/tcp']);
  });

  it('rejects an unknown vantage', async () => {
    const res = await platform.api('/api/v1/scans?filename=edge.nessus&vantage=dmz', { method: 'POST', body: nessus('203.0.113.12', [80]) });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/vantage/);
  });
});
