// The fault suite: the platform as users run it (`ctem start`, a real process with its embedded
// PostgreSQL, Temporal dev server and ServiceNow simulator), loaded with several scans at once, then
// hurt in the middle: kill -9 of the main process, of the Temporal dev server, of PostgreSQL's
// postmaster, or ServiceNow answering 503 for a while. After recovery every scan must have completed
// once with the counts a run without faults gives, every finding must be stored once, and every
// golden ticket must be one incident in ServiceNow. Prints a table: fault, operations in flight,
// lost, duplicated, wrong counts, time to recover.
//
//   npm run test:faults -- [--findings 30000] [--reports 4] [--faults main,temporal,postgres,itsm] [--json]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { parseBenchArgs } from './bench-args.js';
import { freePort } from '../platform/ports.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const FAULTS = ['none', 'main', 'temporal', 'postgres', 'itsm'] as const;
export type Fault = (typeof FAULTS)[number];

export interface FaultResult {
  fault: Fault;
  /** Scans uploaded and still running when the fault struck (for `none` and `itsm`: uploaded). */
  inFlight: number;
  scans: number;
  /** Scans that never completed, findings missing, tickets without their incident. */
  lost: { scans: number; findings: number; tickets: number };
  /** Findings stored twice, incidents opened twice for one ticket. */
  duplicated: { findings: number; incidents: number };
  /** Completed scans whose counts differ from the run without faults (e.g. new findings reported as 0). */
  wrongCounts: number;
  recoverSeconds: number;
  notes: string[];
}

interface Options {
  findings: number;
  reports: number;
  faults: string;
  json: boolean;
}

/** A Trivy report of one image: one CVE in CISA KEV (so a golden ticket opens) and `n - 1` others. */
async function writeReport(file: string, image: string, n: number, offset: number): Promise<void> {
  const out = createWriteStream(file);
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await write(`{"SchemaVersion":2,"ArtifactName":"${image}","ArtifactType":"container_image","Metadata":{"RepoTags":["${image}"]},"Results":[{"Target":"${image} (debian 12.5)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[`);
  await write('{"VulnerabilityID":"CVE-2021-44228","PkgName":"liblog4j2-java","InstalledVersion":"2.14.1-1","FixedVersion":"2.17.1-1","Severity":"CRITICAL","CVSS":{"nvd":{"V3Vector":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H","V3Score":10}}}');
  for (let i = 1; i < n; i++) {
    const id = offset + i;
    await write(`,{"VulnerabilityID":"CVE-2099-${String(100000 + id)}","PkgName":"pkg-${id % 400}","InstalledVersion":"1.${id % 7}.0","FixedVersion":"1.9.0","Severity":"${i % 3 ? 'MEDIUM' : 'HIGH'}","Title":"Flaw ${id}"}`);
  }
  await write(']}]}');
  out.end();
  await once(out, 'finish');
}

interface Run {
  env: Record<string, string>;
  dir: string;
  child?: ChildProcess;
  output: string;
  /** Set when `ctem start` ended without being told to: the fault took the platform down. */
  died?: string;
}

function startCtem(run: Run): Promise<void> {
  const child = spawn(process.execPath, ['bin/ctem.js', 'start'], { cwd: repoRoot, env: { ...process.env, ...run.env } });
  run.child = child;
  child.once('exit', (code, signal) => {
    if (run.child === child && signal !== 'SIGKILL' && signal !== 'SIGTERM') run.died = `ctem start exited (${code ?? signal}):\n${run.output.slice(-4000)}`;
  });
  child.stdout!.on('data', (d) => (run.output += d));
  child.stderr!.on('data', (d) => (run.output += d));
  const mark = run.output.length;
  return new Promise((res, rej) => {
    const timer = setInterval(() => {
      if (run.output.slice(mark).includes('CTEM platform is up')) {
        clearInterval(timer);
        child.off('exit', onExit);
        res();
      }
    }, 100);
    const onExit = (code: number | null) => {
      clearInterval(timer);
      rej(new Error(`ctem start exited with ${code}:\n${run.output.slice(mark).slice(-3000)}`));
    };
    child.once('exit', onExit);
  });
}

async function stopCtem(run: Run): Promise<void> {
  const child = run.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

const pidIn = (file: string) => Number(readFileSync(file, 'utf8').split('\n')[0]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function api(run: Run, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${run.env.PORT}${path}`, { ...init, headers: { authorization: `Bearer ${run.env.CTEM_API_TOKEN}`, ...(init.headers ?? {}) } });
}

/** Retries through the moments the API itself is down (a killed main process, PostgreSQL restarting). */
async function apiJson<T>(run: Run, path: string, deadline: number): Promise<T> {
  for (;;) {
    if (run.died) throw new Error(run.died);
    try {
      const res = await api(run, path);
      if (res.ok) return (await res.json()) as T;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`${path} did not answer in time`);
    await sleep(500);
  }
}

interface Observed {
  scans: Array<{ id: string; status: string; counts: Record<string, number> }>;
  openFindings: number;
  distinctFingerprints: number;
  tickets: Array<{ key: string; external_sys_id: string | null }>;
  incidents: Map<string, number>;
}

async function observe(run: Run, scanIds: string[]): Promise<Observed> {
  const pgPort = run.env.CTEM_PG_PORT!;
  const password = readFileSync(join(run.dir, 'postgres', 'password'), 'utf8').trim();
  const sql = postgres(`postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/ctem`, { max: 1, onnotice: () => {} });
  try {
    const scans = await sql<Observed['scans']>`select id::text, status, counts from scans where id = any(${scanIds}::uuid[])`;
    const [f] = await sql<{ open: number; distinct: number }[]>`select count(*) filter (where status = 'open')::int as open, count(distinct fingerprint)::int as distinct from findings`;
    const tickets = await sql<Observed['tickets']>`select key, external_sys_id from tickets`;
    const secrets = JSON.parse(readFileSync(join(run.dir, 'secrets.json'), 'utf8')) as { simulatorPassword: string };
    const basic = `Basic ${Buffer.from(`admin:${secrets.simulatorPassword}`).toString('base64')}`;
    const res = await fetch(`http://127.0.0.1:${run.env.SERVICENOW_SIM_PORT}/api/now/table/incident?sysparm_limit=10000&sysparm_fields=correlation_id`, { headers: { authorization: basic, accept: 'application/json' } });
    const incidents = new Map<string, number>();
    for (const r of ((await res.json()) as { result: Array<{ correlation_id: string }> }).result) incidents.set(r.correlation_id, (incidents.get(r.correlation_id) ?? 0) + 1);
    return { scans: [...scans], openFindings: f!.open, distinctFingerprints: f!.distinct, tickets: [...tickets], incidents };
  } finally {
    await sql.end();
  }
}

/** Waits until every scan left `running` and every ticket carries its incident, or the deadline. */
async function settle(run: Run, scanIds: string[], deadline: number): Promise<void> {
  for (;;) {
    if (run.died) throw new Error(run.died);
    const scans = await Promise.all(scanIds.map((id) => apiJson<{ status: string }>(run, `/api/v1/scans/${id}`, deadline)));
    if (scans.every((s) => s.status !== 'running')) {
      const tickets = await apiJson<{ items: Array<{ externalNumber?: string | null; state: string }> }>(run, '/api/v1/tickets?limit=500', deadline);
      if (tickets.items.length > 0 && tickets.items.every((t) => t.externalNumber || t.state === 'orphaned')) return;
    }
    if (Date.now() > deadline) return;
    await sleep(1000);
  }
}

export interface ScenarioOptions {
  findings: number;
  reports: number;
  /** Milliseconds after the uploads to strike (the baseline's ingest time times a fraction). */
  strikeAfterMs: number;
  workflowBundle?: string;
  baseline?: Observed;
}

export async function runScenario(fault: Fault, options: ScenarioOptions): Promise<{ result: FaultResult; observed: Observed }> {
  const dir = mkdtempSync(join(tmpdir(), `ctem-fault-${fault}-`));
  chmodSync(dir, 0o755); // the embedded PostgreSQL runs as its own user when started as root
  const data = join(dir, 'data');
  const run: Run = {
    dir: data,
    output: '',
    env: {
      CTEM_DATA_DIR: data,
      PORT: String(await freePort()),
      CTEM_PG_PORT: String(await freePort()),
      CTEM_TEMPORAL_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      SERVICENOW_SIM_PORT: String(await freePort()),
      CTEM_API_TOKEN: `fault-${Date.now()}`,
      CTEM_EPSS_FILE: join(repoRoot, 'test', 'fixtures', 'epss-sample.csv'),
      CTEM_KEV_FILE: join(repoRoot, 'test', 'fixtures', 'kev-sample.json'),
      CTEM_FEED_MAX_AGE_EPSS: '3650d',
      CTEM_FEED_MAX_AGE_KEV: '3650d',
      CTEM_VALIDATION_SCHEDULE: 'off',
      CTEM_METRICS_SCHEDULE: 'off',
      CTEM_HUNTING_SCHEDULE: 'off',
      ...(options.workflowBundle ? { CTEM_WORKFLOW_BUNDLE: options.workflowBundle } : {}),
    },
  };
  const notes: string[] = [];
  try {
    await startCtem(run);
    const per = Math.max(2, Math.floor(options.findings / options.reports));
    const files = await Promise.all(
      Array.from({ length: options.reports }, async (_, k) => {
        const file = join(dir, `report-${k}.json`);
        await writeReport(file, `fault/app-${k}:1`, per, k * per);
        return file;
      }),
    );
    if (fault === 'itsm') {
      // ServiceNow down from before the tickets open: every write answers 503 for a while, then it is back.
      const res = await fetch(`http://127.0.0.1:${run.env.SERVICENOW_SIM_PORT}/__simulator/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 503, count: 40, methods: ['POST', 'PATCH'] }) });
      if (!res.ok) throw new Error(`the simulator refused the fault: ${res.status}`);
    }
    const scanIds = await Promise.all(
      files.map(async (file, k) => {
        const res = await api(run, `/api/v1/scans?filename=report-${k}.json&owner=alex.romero`, { method: 'POST', body: readFileSync(file) });
        if (res.status !== 202) throw new Error(`upload ${k}: ${res.status} ${await res.text()}`);
        return ((await res.json()) as { scanId: string }).scanId;
      }),
    );
    let inFlight = scanIds.length;
    const struck = Date.now();
    if (fault === 'main' || fault === 'temporal' || fault === 'postgres') {
      await sleep(options.strikeAfterMs);
      const statuses = await Promise.all(scanIds.map((id) => apiJson<{ status: string }>(run, `/api/v1/scans/${id}`, Date.now() + 30_000)));
      inFlight = statuses.filter((s) => s.status === 'running').length;
      if (fault === 'main') {
        const pids = ['postgres/data/postmaster.pid', 'temporal.sqlite.pid'].filter((f) => existsSync(join(data, f)));
        notes.push(`embedded servers left running: ${pids.length}`);
        run.child!.kill('SIGKILL');
        await once(run.child!, 'exit');
        await startCtem(run);
      } else if (fault === 'temporal') {
        process.kill(pidIn(join(data, 'temporal.sqlite.pid')), 'SIGKILL');
      } else {
        process.kill(pidIn(join(data, 'postgres', 'data', 'postmaster.pid')), 'SIGKILL');
      }
    }
    await settle(run, scanIds, Date.now() + 8 * 60_000);
    const recoverSeconds = (Date.now() - struck) / 1000;
    const observed = await observe(run, scanIds);
    const completed = observed.scans.filter((s) => s.status === 'completed');
    const expectedFindings = options.reports * per;
    const base = options.baseline;
    const countKeys = ['findings', 'newFindings', 'assets'];
    const wrongCounts = completed.filter((s) => countKeys.some((k) => s.counts[k] !== (k === 'findings' || k === 'newFindings' ? per : 1))).length;
    const tickets = observed.tickets;
    const result: FaultResult = {
      fault,
      inFlight,
      scans: scanIds.length,
      lost: {
        scans: scanIds.length - completed.length,
        findings: Math.max(0, expectedFindings - observed.openFindings),
        tickets: tickets.filter((t) => !observed.incidents.has(t.key)).length + (base ? Math.max(0, base.tickets.length - tickets.length) : 0),
      },
      duplicated: {
        findings: Math.max(0, observed.openFindings - expectedFindings),
        incidents: [...observed.incidents.values()].reduce((n, c) => n + (c - 1), 0),
      },
      wrongCounts,
      recoverSeconds: Math.round(recoverSeconds * 10) / 10,
      notes,
    };
    if (wrongCounts) result.notes.push(`counts: ${JSON.stringify(completed.map((s) => s.counts))}`);
    return { result, observed };
  } finally {
    await stopCtem(run).catch(() => {});
    // Whatever a killed start left behind.
    for (const file of [join(data, 'postgres', 'data', 'postmaster.pid'), join(data, 'temporal.sqlite.pid')]) {
      if (!existsSync(file)) continue;
      try {
        process.kill(pidIn(file), 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function buildWorkflowBundle(file: string): Promise<string> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { workflowsPath } = await import('../platform/worker.js');
  writeFileSync(file, (await bundleWorkflowCode({ workflowsPath, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never })).code);
  return file;
}

async function main(): Promise<void> {
  const options = parseBenchArgs<Options>(process.argv.slice(2), { findings: 'count', reports: 'count', faults: 'text', json: 'flag' }, { findings: 30_000, reports: 4, faults: 'main,temporal,postgres,itsm', json: false });
  const chosen = options.faults.split(',') as Fault[];
  const unknown = chosen.filter((f) => !FAULTS.includes(f));
  if (unknown.length) throw new Error(`--faults: unknown ${unknown.join(', ')} (faults: ${FAULTS.filter((f) => f !== 'none').join(', ')})`);
  const bundle = await buildWorkflowBundle(join(mkdtempSync(join(tmpdir(), 'ctem-fault-bundle-')), 'workflows.js'));
  const baseline = await runScenario('none', { findings: options.findings, reports: options.reports, strikeAfterMs: 0, workflowBundle: bundle });
  // Strike a quarter of the way into what the same load takes without faults: mid-ingest.
  const strikeAfterMs = Math.max(300, baseline.result.recoverSeconds * 1000 * 0.25);
  const results: FaultResult[] = [baseline.result];
  console.error(`fault suite: baseline settled in ${baseline.result.recoverSeconds} s; striking after ${Math.round(strikeAfterMs)} ms`);
  for (const fault of chosen) {
    console.error(`fault suite: ${fault}...`);
    results.push((await runScenario(fault, { findings: options.findings, reports: options.reports, strikeAfterMs, workflowBundle: bundle, baseline: baseline.observed })).result);
  }
  if (options.json) {
    console.log(JSON.stringify({ findings: options.findings, reports: options.reports, results }, null, 2));
  } else {
    console.log(`fault suite: ${options.reports} reports, ${options.findings} findings, uploaded at once`);
    console.log('fault      in flight  lost (scans/findings/tickets)  duplicated (findings/incidents)  wrong counts  recover s');
    for (const r of results) {
      console.log(`${r.fault.padEnd(10)} ${String(r.inFlight).padStart(9)}  ${`${r.lost.scans}/${r.lost.findings}/${r.lost.tickets}`.padStart(29)}  ${`${r.duplicated.findings}/${r.duplicated.incidents}`.padStart(31)}  ${String(r.wrongCounts).padStart(12)}  ${String(r.recoverSeconds).padStart(9)}`);
      for (const note of r.notes) console.log(`           ${note}`);
    }
  }
  const bad = results.some((r) => r.lost.scans + r.lost.findings + r.lost.tickets + r.duplicated.findings + r.duplicated.incidents + r.wrongCounts > 0);
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`fault suite: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  });
}
