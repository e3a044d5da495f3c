// Parse throughput per format: a real report from the corpus is amplified to the size asked for
// (its own records repeated, so the parser sees real shapes, names and field sizes), then parsed in
// this process the way `ctem parse` and ingest read it (`parseReport`, warnings on). Reports MB/s,
// findings/s and the peak RSS growth. Nothing touches a database: this is the connectors' cost alone.
//
//   npm run bench:parse -- [--mb 100] [--formats trivy-json,nessus] [--json]
//
// CTEM_CORPUS_DIR (default ../shared/corpus) supplies the reports; without it nothing runs.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectorFor, parseReport } from '../discovery/connectors/index.js';
import { parseBenchArgs } from './bench-args.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const corpusDir = resolve(process.env.CTEM_CORPUS_DIR ?? join(repoRoot, '..', 'shared', 'corpus'));

/** How a report is made bigger: the repeated part is its list of records, the rest stays once. */
type Amplify =
  | { kind: 'json'; path: (string | number)[] }
  | { kind: 'xml'; open: string; close: string }
  | { kind: 'csv' };

interface Sample {
  format: string;
  file: string;
  amplify: Amplify;
}

export const SAMPLES: readonly Sample[] = [
  { format: 'trivy-json', file: 'scanners/more/trivy-grype-same-image/trivy-results.json', amplify: { kind: 'json', path: ['Results'] } },
  { format: 'grype', file: 'scanners/more/trivy-grype-same-image/grype-results.json', amplify: { kind: 'json', path: ['matches'] } },
  { format: 'cyclonedx-json', file: 'scanners/defectdojo/cyclonedx/log4j.json', amplify: { kind: 'json', path: ['vulnerabilities'] } },
  { format: 'sarif', file: 'scanners/defectdojo/sarif/cxf-3.4.6.sarif', amplify: { kind: 'json', path: ['runs', 0, 'results'] } },
  { format: 'nessus', file: 'scanners/defectdojo/tenable/nessus/nessus_with_cvssv3.nessus', amplify: { kind: 'xml', open: '<ReportHost', close: '</ReportHost>' } },
  { format: 'qualys-xml', file: 'scanners/defectdojo/qualys/Qualys_Sample_Report.xml', amplify: { kind: 'xml', open: '<HOST>', close: '</HOST>' } },
  { format: 'tenable-csv', file: 'scanners/defectdojo/tenable/nessus/nessus_many_vuln.csv', amplify: { kind: 'csv' } },
];

/** The text before the repeated records, one copy of them (without the separator), and the text after. */
function splitReport(text: string, amplify: Amplify, file: string): { head: string; body: string; separator: string; tail: string } {
  if (amplify.kind === 'json') {
    const doc = JSON.parse(text) as unknown;
    let parent = doc as Record<string | number, unknown>;
    for (const key of amplify.path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = amplify.path.at(-1)!;
    const records = parent[last];
    if (!Array.isArray(records) || records.length === 0) throw new Error(`${file}: no records at ${amplify.path.join('.')}`);
    const placeholder = `records-${process.pid}-${Date.now()}`;
    const marker = JSON.stringify(placeholder);
    parent[last] = placeholder;
    const [head, tail] = JSON.stringify(doc).split(marker) as [string, string];
    return { head: `${head}[`, body: records.map((r) => JSON.stringify(r)).join(','), separator: ',', tail: `]${tail}` };
  }
  if (amplify.kind === 'xml') {
    const start = text.indexOf(amplify.open);
    const end = text.lastIndexOf(amplify.close);
    if (start < 0 || end < start) throw new Error(`${file}: no ${amplify.open} element`);
    const stop = end + amplify.close.length;
    return { head: text.slice(0, start), body: text.slice(start, stop), separator: '\n', tail: text.slice(stop) };
  }
  // CSV: the header once, then every record again (quoted fields may span lines, so the whole body repeats).
  const newline = text.indexOf('\n');
  const body = text.slice(newline + 1);
  return { head: text.slice(0, newline + 1), body: body.endsWith('\n') ? body.slice(0, -1) : body, separator: '\n', tail: '\n' };
}

/** Writes the sample repeated until the file reaches `bytes`; answers how many copies it holds. */
export async function amplifyReport(sample: Sample, bytes: number, out: string): Promise<number> {
  const source = join(corpusDir, sample.file);
  const { head, body, separator, tail } = splitReport(await readFile(source, 'utf8'), sample.amplify, source);
  const copies = Math.max(1, Math.ceil((bytes - head.length - tail.length) / (body.length + separator.length)));
  const stream = createWriteStream(out);
  const write = async (chunk: string) => {
    if (!stream.write(chunk)) await once(stream, 'drain');
  };
  await write(head);
  for (let i = 0; i < copies; i++) await write(i ? separator + body : body);
  await write(tail);
  stream.end();
  await once(stream, 'finish');
  return copies;
}

export interface ParseFigure {
  format: string;
  source: string;
  copies: number;
  megabytes: number;
  findings: number;
  /** Findings one copy of the real report gives: the amplified file must give exactly copies × this. */
  findingsPerCopy: number;
  warnings: number;
  seconds: number;
  mbPerSecond: number;
  findingsPerSecond: number;
  rssGrowthMb: number;
}

async function parseCount(file: string, format: string): Promise<{ findings: number; warnings: number; seconds: number; peakRss: number }> {
  const connector = await connectorFor(file, file, format);
  let findings = 0;
  let warnings = 0;
  let peakRss = process.memoryUsage().rss;
  const started = process.hrtime.bigint();
  for await (const _ of parseReport(connector, file, file, { warn: () => void warnings++ })) {
    if (++findings % 5000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { findings, warnings, seconds, peakRss: Math.max(peakRss, process.memoryUsage().rss) };
}

export async function benchParse(megabytes: number, formats?: string[]): Promise<ParseFigure[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ctem-bench-parse-'));
  const figures: ParseFigure[] = [];
  try {
    for (const sample of SAMPLES.filter((s) => !formats || formats.includes(s.format))) {
      const one = join(dir, `one-${sample.format}`);
      await amplifyReport(sample, 0, one);
      const perCopy = (await parseCount(one, sample.format)).findings;
      const file = join(dir, `big-${sample.format}`);
      const copies = await amplifyReport(sample, megabytes * 1024 * 1024, file);
      const size = (await stat(file)).size / 1024 / 1024;
      (globalThis as { gc?: () => void }).gc?.();
      const baseline = process.memoryUsage().rss;
      const run = await parseCount(file, sample.format);
      await rm(file);
      figures.push({
        format: sample.format,
        source: sample.file,
        copies,
        megabytes: round(size, 1),
        findings: run.findings,
        findingsPerCopy: perCopy,
        warnings: run.warnings,
        seconds: round(run.seconds, 2),
        mbPerSecond: round(size / run.seconds, 1),
        findingsPerSecond: Math.round(run.findings / run.seconds),
        rssGrowthMb: Math.max(0, Math.round((run.peakRss - baseline) / 1024 / 1024)),
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const options = parseBenchArgs(process.argv.slice(2), { mb: 'count', formats: 'text', json: 'flag' }, { mb: 100, formats: '', json: false });
  const known = SAMPLES.map((s) => s.format);
  const formats = options.formats ? options.formats.split(',') : undefined;
  const unknown = formats?.filter((f) => !known.includes(f)) ?? [];
  if (unknown.length) throw new Error(`--formats: unknown ${unknown.join(', ')} (benchmarked: ${known.join(', ')})`);
  const missing = SAMPLES.filter((s) => !formats || formats.includes(s.format)).map((s) => join(corpusDir, s.file));
  for (const file of missing) await stat(file).catch(() => Promise.reject(new Error(`corpus report missing: ${file} (set CTEM_CORPUS_DIR)`)));
  const figures = await benchParse(options.mb, formats);
  if (options.json) {
    console.log(JSON.stringify({ megabytes: options.mb, node: process.version, figures }, null, 2));
    return;
  }
  console.log(`parse throughput, ${options.mb} MB per format, in-process (node ${process.version})`);
  console.log('format          MB      findings    s       MB/s   findings/s  RSS +MB');
  for (const f of figures) {
    console.log(
      `${f.format.padEnd(14)} ${String(f.megabytes).padStart(6)} ${String(f.findings).padStart(10)} ${String(f.seconds).padStart(7)} ${String(f.mbPerSecond).padStart(8)} ${String(f.findingsPerSecond).padStart(11)} ${String(f.rssGrowthMb).padStart(8)}`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`bench:parse: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
