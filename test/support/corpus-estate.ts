import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { packDirectory } from '../../prioritization/feeds/archive.js';
import { corpusDir, corpusFile } from './corpus.js';
import { eventually, json, type TestPlatform } from './platform.js';

// The whole real corpus as an estate, loaded through the running platform the way teams would:
// the real FIRST EPSS and CISA KEV files of January 2026, CISA's Vulnrichment CVE records, every scanner report of ../shared/corpus
// uploaded three at a time, network scans taken from the internet's side, and owners as a real
// estate has them (most named, some assets with none, one team's owner misspelled).

export interface UploadOutcome {
  file: string;
  status: string;
  error?: string;
}

export function corpusReports(dir = corpusFile('scanners')): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? corpusReports(path) : [path];
    })
    .filter((p) => !/(README\.md|MANIFEST\.tsv|SHA256SUMS)$/.test(p))
    .sort();
}

/** Who a report's assets belong to, as the uploading team says. */
export function uploadOf(file: string): { owner?: string; vantage?: string } {
  const rel = relative(corpusDir, file);
  // Network scanners look from outside: their hosts are internet-exposed on the ports they saw.
  if (/\/(nessus|tenable|qualys)\//.test(rel)) return { owner: 'jonas.weber', vantage: 'internet' };
  // A team that typed its owner wrong.
  if (rel.includes('/anchore_grype/')) return { owner: 'alex.romer0' };
  // SBOMs handed over by suppliers: nobody in the estate owns them yet.
  if (/\/(cyclonedx|cyclonedx-vex|dependency_track)\//.test(rel)) return {};
  return { owner: 'alex.romero' };
}

async function finished(platform: TestPlatform, scanId: string) {
  return eventually(
    async () => {
      const s = await json<{ status: string; error?: string }>(platform.api(`/api/v1/scans/${scanId}`));
      return s.status === 'running' ? undefined : s;
    },
    { what: `scan ${scanId}`, timeoutMs: 120_000 },
  );
}

async function upload(platform: TestPlatform, file: string): Promise<UploadOutcome> {
  const { owner, vantage } = uploadOf(file);
  const params = (target?: string) =>
    new URLSearchParams({ filename: basename(file), ...(owner ? { owner } : {}), ...(vantage ? { vantage } : {}), ...(target ? { target } : {}) });
  const send = (target?: string) => platform.api(`/api/v1/scans?${params(target)}`, { method: 'POST', body: readFileSync(file) });
  const res = await send();
  if (res.status !== 202) return { file, status: `rejected ${res.status}`, error: await res.text() };
  let scan = await finished(platform, ((await res.json()) as { scanId: string }).scanId);
  // SBOMs and npm audit reports do not name their subject: the uploader does, as a user would.
  if (scan.status === 'failed' && /pass a target/.test(scan.error ?? '')) {
    const again = await send(relative(corpusDir, file).replace(/[/.]/g, '-'));
    scan = await finished(platform, ((await again.json()) as { scanId: string }).scanId);
  }
  return { file, status: scan.status, ...(scan.error ? { error: scan.error } : {}) };
}

/** Imports a feed file through the API, judged as of the end of January 2026 (the files' date). */
export async function importFeed(platform: TestPlatform, kind: string, file: string): Promise<Response> {
  return platform.api(`/api/v1/intel/${kind}?asOf=2026-01-31`, { method: 'POST', body: readFileSync(file) });
}

/** EPSS and KEV of January 2026 and CISA's Vulnrichment CVE records, then every report; returns each upload's outcome. */
export async function loadCorpusEstate(platform: TestPlatform): Promise<UploadOutcome[]> {
  for (const [kind, file] of [
    ['epss', corpusFile('intel', 'epss', 'epss_scores-2026-01-30.csv.gz')],
    ['kev', corpusFile('intel', 'kev', 'realrisk_2026.01.29', 'known_exploited_vulnerabilities.json')],
  ] as const) {
    const res = await importFeed(platform, kind, file);
    if (res.status !== 200) throw new Error(`${kind} import: ${res.status} ${await res.text()}`);
  }
  // The records are a snapshot of October 2024: their freshness is judged as of then.
  const scratch = mkdtempSync(join(tmpdir(), 'ctem-cve-'));
  const records = join(scratch, 'vulnrichment-sample.tar.gz');
  await pipeline(packDirectory(corpusFile('intel', 'cve-records', 'vulnrichment-sample'), () => true), createWriteStream(records));
  const body = readFileSync(records);
  rmSync(scratch, { recursive: true, force: true });
  const cve = await platform.api('/api/v1/intel/cve?asOf=2024-10-25&filename=vulnrichment-sample.tar.gz', { method: 'POST', body });
  if (cve.status !== 200) throw new Error(`cve import: ${cve.status} ${await cve.text()}`);
  const outcomes: UploadOutcome[] = [];
  const queue = corpusReports();
  await Promise.all([1, 2, 3].map(async () => {
    for (let f = queue.shift(); f; f = queue.shift()) outcomes.push(await upload(platform, f));
  }));
  return outcomes;
}
