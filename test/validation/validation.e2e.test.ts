import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rescoreWorkflow } from '../../workflows/rescore.js';
import { selfSignedCertificate } from '../support/certificates.js';
import { eventually, json, startTestPlatform, type TestPlatform } from '../support/platform.js';

// Validation end to end on the real platform (API, worker, Temporal, PostgreSQL): a web host on the
// internet in front of a critical database, a probe target on loopback (the only address the
// allow-list names) and one outside it. A validation run finds the path internet -> web -> db,
// probes the web service and verifies its WAF, never contacts the database; pentest evidence that
// the database's vulnerability is not exploitable lowers it, the rescoring moves it, a validation
// starts after that rescoring, and the path is gone.

let platform: TestPlatform;
let server: Server;
let tlsServer: Server;
let port = 0;
let tlsPort = 0;
let connections = 0;
const findings: Record<string, number> = {};

interface Run {
  id: string;
  status: string;
  trigger: string;
  results: {
    graph: { paths: number; jewels: number; chokePoints: number };
    tiersMoved: { up: number; down: number };
    probes: { enabled: boolean; targets: number; probed: number; outsideAllowList: number; reachable: number; versionChanged: number; evidence: number };
    controls: { checked: number; verified: number; failed: number; unverified: number };
    topFixes: Array<{ ticketKey: string; pathsCut: number }>;
  };
}

async function validate(): Promise<Run> {
  const { workflowId } = await json<{ workflowId: string }>(platform.api('/api/v1/validations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ scope: 'estate' }) }));
  expect(workflowId).toMatch(/^validation:estate:[0-9a-f]{8}$/);
  return eventually(async () => {
    const run = await json<Run>(platform.api(`/api/v1/validations/${encodeURIComponent(workflowId)}`));
    if (run.status === 'failed') throw new Error(`validation failed: ${JSON.stringify(run)}`);
    return run.status === 'completed' ? run : undefined;
  }, { timeoutMs: 60_000, what: `validation ${workflowId}` });
}

beforeAll(async () => {
  // A web server that says which nginx it is and, like a WAF, refuses a script in the query.
  server = createServer((req, res) => {
    const blocked = decodeURIComponent(req.url ?? '').includes('<script>');
    res.writeHead(blocked ? 403 : 200, { server: 'nginx/1.18.0', 'content-type': 'text/plain' });
    res.end(blocked ? 'blocked' : 'ok');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;

  // The same nginx over TLS on another port, with a self-signed certificate.
  const cert = selfSignedCertificate('web.test', new Date(Date.now() - 86_400_000), new Date(Date.now() + 30 * 86_400_000));
  tlsServer = createHttpsServer(cert, (_req, res) => {
    res.writeHead(200, { server: 'nginx/1.18.0' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  tlsPort = (tlsServer.address() as AddressInfo).port;

  platform = await startTestPlatform({ CTEM_VALIDATION_ALLOW: '127.0.0.1', CTEM_VALIDATION_AFTER_RESCORE: 'true', CTEM_VALIDATION_RATE: '50' });
  const sql = platform.database.sql;
  const host = async (key: string, ip: string, extra: { groups: string[]; publicIps?: string[]; ports?: string[]; criticality?: string }) => {
    const [row] = await sql<{ id: string }[]>`
      insert into assets (asset_key, kind, name, owner, criticality, security_groups, public_ips, internet_facing, exposed_ports)
      values (${key}, 'host', ${key.slice(5)}, 'alex.romero', ${extra.criticality ?? null}, ${sql.array(extra.groups)}, ${extra.publicIps ? sql.array(extra.publicIps) : null},
              ${extra.ports ? true : null}, ${extra.ports ? sql.array(extra.ports) : null})
      returning id`;
    const id = Number(row!.id);
    await sql`insert into asset_identifiers (kind, value, asset_id, source) values ('key', ${key}, ${id}, 'test'), ('ip', ${ip}, ${id}, 'test')`;
    return id;
  };
  const web = await host('host:web.test', '127.0.0.1', { groups: ['sg-web'], publicIps: ['198.51.100.7'], ports: [`${port}/tcp`, `${tlsPort}/tcp`] });
  const db = await host('host:db.test', '10.0.0.5', { groups: ['sg-db'], criticality: 'critical' });
  await sql`
    insert into exposure_rules (source, security_group, protocol, from_port, to_port, cidr) values
      ('security-groups', 'sg-web', 'tcp', ${port}, ${port}, '0.0.0.0/0'),
      ('security-groups', 'sg-web', 'tcp', ${tlsPort}, ${tlsPort}, '0.0.0.0/0'),
      ('security-groups', 'sg-db', 'tcp', 5432, 5432, 'sg-web')`;
  const finding = async (assetId: number, issueId: string, component: string, version: string, location: string) => {
    const [row] = await sql<{ id: string }[]>`
      insert into findings (fingerprint, asset_id, kind, issue_id, component, version, location, severity, cvss_score, first_scan_id, last_scan_id)
      values (${`${assetId}:${issueId}`}, ${assetId}, 'vulnerability', ${issueId}, ${component}, ${version}, ${location}, 'critical', 9.8, gen_random_uuid(), gen_random_uuid())
      returning id`;
    return Number(row!.id);
  };
  findings.web = await finding(web, 'CVE-2021-23017', 'nginx', '1.18.0', `${port}/tcp`);
  findings.webTls = await finding(web, 'CVE-2019-20372', 'nginx', '1.18.0', `${tlsPort}/tcp`);
  findings.db = await finding(db, 'CVE-2023-2454', 'postgresql', '14.1', '5432/tcp');
  await sql`
    insert into compensating_controls (name, kind, mitigates, applies_to, effect)
    values ('edge-waf', 'waf', ${sql.json({ issueIds: ['CVE-2099-0001'] })}, ${sql.json({ assetKeys: ['host:web.test'] })}, 'not_exploitable')`;
  await platform.temporalClient.workflow.execute(rescoreWorkflow, { taskQueue: platform.env.CTEM_TASK_QUEUE!, workflowId: 'rescore:validation-e2e', args: [{ reason: 'test estate' }] });
  // The first scoring put both findings in attend: the estate is validated after it, on its own.
  await platform.temporalClient.workflow.getHandle('validation:estate:after-rescore:validation-e2e').result();
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  await new Promise((resolve) => server?.close(resolve));
  await new Promise((resolve) => tlsServer?.close(resolve));
});

describe('validation run', () => {
  it('finds the path to the crown jewel, probes only the allowed service and verifies the WAF', async () => {
    const tiers = await platform.database.sql<{ id: string; tier: string }[]>`select id, tier from findings order by id`;
    expect(tiers.map((t) => t.tier)).toEqual(['attend', 'attend', 'attend']);
    const run = await validate();
    expect(run.trigger).toBe('api');
    expect(run.results.graph).toMatchObject({ paths: 1, jewels: 1 });
    expect(run.results.probes).toMatchObject({ enabled: true, targets: 3, probed: 2, outsideAllowList: 1, reachable: 2, versionChanged: 0, evidence: 2 });
    expect(run.results.controls).toMatchObject({ checked: 1, verified: 1, failed: 0 });
    // Two requests to the web server: the WAF's plain and test requests, and the probe's one.
    expect(connections).toBeGreaterThanOrEqual(2);

    // One probe result per run on each web finding (the run after the first scoring, and this one); none on the database's.
    type Evidence = { vulnerability: string; result: string; tool: string; source: string; detail: { version?: { result: string }; tls?: { protocol: string; certificate: { selfSigned: boolean; subjectAltNames?: string[] } } } };
    const evidence = await json<{ items: Evidence[] }>(platform.api(`/api/v1/validation/evidence?result=reachable`));
    expect(evidence.items.map((e) => [e.source, e.vulnerability]).sort()).toEqual([
      ['validation:estate:after-rescore:validation-e2e', 'CVE-2019-20372'],
      ['validation:estate:after-rescore:validation-e2e', 'CVE-2021-23017'],
      [run.id, 'CVE-2019-20372'],
      [run.id, 'CVE-2021-23017'],
    ].sort());
    for (const e of evidence.items) {
      expect(e.tool).toBe('probe');
      expect(e.detail.version?.result).toBe('same');
    }
    // The service on the TLS port said nothing first: a handshake read its protocol and certificate, then HTTPS its banner.
    const tls = evidence.items.find((e) => e.vulnerability === 'CVE-2019-20372')!.detail.tls!;
    expect(tls.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(tls.certificate.selfSigned).toBe(true);
    expect(evidence.items.find((e) => e.vulnerability === 'CVE-2021-23017')!.detail.tls).toBeUndefined();
    expect((await json<{ items: unknown[] }>(platform.api('/api/v1/validation/evidence?vulnerability=CVE-2023-2454'))).items).toEqual([]);
    const [control] = await platform.database.sql`select verification, verification_detail from compensating_controls where name = 'edge-waf'`;
    expect(control!.verification).toBe('verified');
  });

  it('reads the path back for the exposure, with its techniques, and ranks the fixes by the paths they cut', async () => {
    const path = await json<{ onPath: boolean; hopsFromInternet: number; hopsToJewel: number; steps: Array<{ name: string; issueId: string | null; techniques: Array<{ id: string }> }> }>(
      platform.api(`/api/v1/exposures/${findings.web}/attack-path`),
    );
    expect(path).toMatchObject({ onPath: true, hopsFromInternet: 1, hopsToJewel: 1 });
    expect(path.steps.map((s) => [s.name, s.techniques.map((t) => t.id)])).toEqual([
      ['web.test', ['T1190']],
      ['db.test', ['T1210']],
    ]);
    // The web host is entered through one of its two nginx exposures, the database through its own.
    expect(['CVE-2021-23017', 'CVE-2019-20372']).toContain(path.steps[0]!.issueId);
    expect(path.steps[1]!.issueId).toBe('CVE-2023-2454');
    const paths = await json<{ summary: { paths: number }; chokePoints: Array<{ name: string; share: number }>; fixes: Array<{ ticketKey: string; pathsCut: number }> }>(platform.api('/api/v1/attack-paths'));
    expect(paths.summary.paths).toBe(1);
    expect(paths.chokePoints[0]).toMatchObject({ name: 'web.test', share: 1 });
    // Both golden tickets cut the one path: fixing the web server or the database breaks it.
    expect(paths.fixes.map((f) => f.pathsCut)).toEqual([1, 1]);
  });

  it('takes pentest evidence, moves the tier with it, validates again after the rescoring, and the path is gone', async () => {
    const csv = `asset,vulnerability,result,tested_at,port,tool\n10.0.0.5,CVE-2023-2454,not_exploitable,${new Date().toISOString()},5432/tcp,acme-pentest\n`;
    const imported = await json<{ stored: number; findings: number; rescoreWorkflowId: string }>(platform.api('/api/v1/validation/evidence?filename=pentest.csv', { method: 'POST', body: csv }));
    expect(imported).toMatchObject({ stored: 1, findings: 1 });
    await platform.temporalClient.workflow.getHandle(imported.rescoreWorkflowId).result();
    const [db] = await platform.database.sql<{ tier: string; explanation: Array<{ factor: string; value: string }> }[]>`select tier, explanation(findings) as explanation from findings where id = ${findings.db!}`;
    expect(db!.tier).toBe('track');
    expect(db!.explanation.map((f) => f.factor)).toContain('validation');
    // The rescoring moved a finding out of attend: the estate is validated again on its own.
    const after = await eventually(async () => {
      const runs = await json<{ items: Run[] }>(platform.api('/api/v1/validations?scope=estate'));
      return runs.items.find((r) => r.id === `validation:estate:after-${imported.rescoreWorkflowId}` && r.status === 'completed');
    }, { timeoutMs: 60_000, what: 'the validation after the rescoring' });
    expect(after.trigger).toBe('rescore');
    expect(after.results.graph.paths).toBe(0);
  });

  it('lets expired evidence go: the next validation run rescores, the tier returns and so does the path', async () => {
    await platform.database.sql`update validation_evidence set expires_at = now() - interval '1 minute' where vulnerability = 'CVE-2023-2454'`;
    const run = await validate();
    expect(run.results.tiersMoved).toEqual({ up: 1, down: 0 });
    expect(run.results.graph.paths).toBe(1);
    const [db] = await platform.database.sql<{ tier: string }[]>`select tier from findings where id = ${findings.db!}`;
    expect(db!.tier).toBe('attend');
    // The run's own rescoring started no further validation.
    const runs = await json<{ items: Run[] }>(platform.api('/api/v1/validations?scope=estate&limit=50'));
    expect(runs.items.filter((r) => r.id.includes(`after-rescore:${run.id}`))).toEqual([]);
  });
});
