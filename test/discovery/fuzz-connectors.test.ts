import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor, connectors } from '../../discovery/connectors/index.js';
import { parseAs } from '../support/connectors.js';
import { HOSTILE_HEADS, mutate, mutationArbitrary, type Mutation } from '../support/fuzz-mutations.js';
import { FuzzRunner, type FuzzResult } from '../support/fuzz-runner.js';
import { familyOf, SEEDS, type Seed } from '../support/fuzz-seeds.js';
import { findingProblems } from '../support/fuzz-findings.js';

// Fuzzing of every scanner-report connector. Each seed report (test/support/fuzz-seeds.ts) is
// mutated by fast-check (truncated, bytes flipped, inserted, deleted, NUL and invalid UTF-8, slices
// duplicated, a value replaced by 100,000 levels of nesting or a long string, BOM, CRLF, long lines,
// another format grafted behind its head, a 64 KiB head made to trip backtracking, XML entity and
// DTD payloads, broken CSV quoting and widths) and parsed with its format forced and with
// detection. Each report must finish within CASE_TIMEOUT_MS (detection within DETECT_TIMEOUT_MS)
// and either give well-formed findings or a ReportError naming the file. Hostile
// shapes too large to generate at random (a 40 MB string, a 20 MB line) run once per format, and
// the parsing process's peak RSS during a format's run may not exceed its loaded baseline by more
// than MAX_RSS_GROWTH.
//
// Replay a failure with the seed fast-check prints:
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> FUZZ_FORMAT=<format> npx vitest run test/discovery/fuzz-connectors.test.ts
// FUZZ_RUNS raises the number of cases per format (default RUNS).

const RUNS = Number(process.env.FUZZ_RUNS ?? 24);
const CASE_TIMEOUT_MS = 10_000;
/** Detection reads 64 KiB; it runs on every upload that names no format. */
const DETECT_TIMEOUT_MS = 1_000;
const MAX_RSS_GROWTH = 300 * 1024 * 1024;
const HUGE = 40 * 1024 * 1024;
const MB = 1024 * 1024;

let dir = '';
const runner = new FuzzRunner();
const totals = { cases: 0, parsed: 0, refused: 0, ms: 0, maxRssGrowth: 0, worstFormat: '' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctem-fuzz-'));
});
afterAll(async () => {
  await runner.close();
  await rm(dir, { recursive: true, force: true });
  if (totals.cases > 0) {
    console.log(`fuzz: ${totals.cases} reports (${totals.parsed} parsed, ${totals.refused} refused) in ${(totals.ms / 1000).toFixed(1)} s of parsing; ` +
      `largest RSS growth ${(totals.maxRssGrowth / MB).toFixed(0)} MB (${totals.worstFormat})`);
  }
});

let caseNo = 0;
/** Writes the report, parses it in the worker, and says what went wrong (undefined: nothing). */
async function check(seed: Seed, bytes: Buffer, detect: boolean): Promise<{ failure?: string; result: FuzzResult }> {
  const file = join(dir, `${caseNo++}-${seed.name}`);
  await writeFile(file, bytes);
  try {
    const result = await runner.parse({ file, format: detect ? undefined : seed.format, options: seed.options }, CASE_TIMEOUT_MS);
    totals.cases++;
    totals.ms += result.ms;
    const how = detect ? 'detected' : `as ${seed.format}`;
    if ((result.outcome === 'parsed' || result.outcome === 'refused') && (result.detectMs ?? 0) > DETECT_TIMEOUT_MS) {
      return { result, failure: `${how}: detection took ${Math.round(result.detectMs!)} ms` };
    }
    switch (result.outcome) {
      case 'parsed':
        totals.parsed++;
        return { result, failure: result.problems.length > 0 ? `${how}: malformed findings: ${result.problems.join('; ')}` : undefined };
      case 'refused':
        totals.refused++;
        return { result };
      case 'crashed':
        return { result, failure: `${how}: crashed: ${result.message}` };
      case 'timeout':
        return { result, failure: `${how}: no result within ${CASE_TIMEOUT_MS} ms` };
    }
  } finally {
    await unlink(file).catch(() => undefined);
  }
}

describe('the seed corpus', () => {
  it('has a seed for every registered format, each parsing to findings by its own format and by detection', async () => {
    expect(SEEDS.map((s) => s.format).sort()).toEqual(connectors.map((c) => c.format).sort());
    for (const seed of SEEDS) {
      const file = join(dir, `seed-${seed.name}`);
      await writeFile(file, seed.bytes);
      const findings = await parseAs(seed.format, file, seed.options);
      expect(findings.length, `${seed.format} (${seed.source})`).toBeGreaterThanOrEqual(1);
      expect(findings.flatMap(findingProblems), seed.format).toEqual([]);
      expect((await connectorFor(file, seed.name)).format, seed.source).toBe(seed.format);
    }
  });
});

/** Hostile shapes too costly to draw at random: each once per format, forced and detected. */
function hostileShapes(seed: Seed): { shape: string; mutations: Mutation[] }[] {
  const family = familyOf(seed);
  const middle = 7; // a value inside the first finding of every seed, not the format's marker
  const shapes: { shape: string; mutations: Mutation[] }[] = [
    { shape: `a ${HUGE / MB} MB string in a field`, mutations: [{ op: 'replace-value', nth: middle, payload: { kind: 'long-string', length: HUGE } }] },
    { shape: '100,000 nested arrays in a field', mutations: [{ op: 'replace-value', nth: middle, payload: { kind: 'deep-array', depth: 100_000 } }] },
    { shape: '100,000 nested objects in a field', mutations: [{ op: 'replace-value', nth: middle, payload: { kind: 'deep-object', depth: 100_000 } }] },
    { shape: 'a 20 MB line', mutations: [{ op: 'long-line', at: Math.floor(seed.bytes.length / 2), length: 20 * MB }] },
    { shape: 'truncated to half, NUL and invalid UTF-8 inside', mutations: [{ op: 'truncate', at: Math.floor(seed.bytes.length / 2) }, { op: 'nul', at: 40 }, { op: 'bad-utf8', at: 60, sequence: 4 }] },
  ];
  HOSTILE_HEADS.forEach(({ start, repeat }, pattern) => {
    shapes.push({ shape: `a 64 KiB head of ${JSON.stringify(start)} and ${JSON.stringify(repeat)} repeated`, mutations: [{ op: 'hostile-head', pattern }] });
  });
  if (family === 'xml') {
    for (const attack of ['billion-laughs', 'external-entity', 'parameter-entity', 'external-dtd', 'undeclared-entity', 'unclosed-cdata', 'deep-elements'] as const) {
      shapes.push({ shape: `XML ${attack}`, mutations: [{ op: 'xml', attack }] });
    }
    // The first attribute value after the XML declaration (a replace-value span), 40 MB long.
    const attribute = [...seed.bytes.toString('utf8').matchAll(/(?<=>)([^<]+)(?=<)|(?<==")([^"]*)(?=")/g)]
      .findIndex((m) => m[2] !== undefined && m.index > seed.bytes.indexOf('?>'));
    if (attribute >= 0) shapes.push({ shape: `a ${HUGE / MB} MB attribute value`, mutations: [{ op: 'replace-value', nth: attribute, payload: { kind: 'long-string', length: HUGE } }] });
  }
  if (family === 'csv') {
    for (const attack of ['open-quote', 'extra-column', 'missing-column', 'many-columns'] as const) {
      shapes.push({ shape: `CSV ${attack}`, mutations: [{ op: 'csv', attack }] });
    }
    shapes.push({ shape: 'CSV quote left open before 20 MB', mutations: [{ op: 'csv', attack: 'open-quote' }, { op: 'long-line', at: 1 << 30, length: 20 * MB }] });
  }
  return shapes;
}

const only = process.env.FUZZ_FORMAT;

describe.each(SEEDS.filter((s) => !only || s.format === only))('fuzzing $format', (seed) => {
  const family = familyOf(seed);

  it(`mutated ${seed.source === 'inline' ? 'inline seed' : seed.source}: findings or a ReportError, in time, in bounded memory`, async () => {
    runner.resetPeak();
    const arbitrary = fc.tuple(fc.array(mutationArbitrary(family, SEEDS.length), { minLength: 1, maxLength: 3 }), fc.boolean());
    await fc.assert(
      fc.asyncProperty(arbitrary, async ([mutations, detect]) => {
        const { failure } = await check(seed, mutate(seed, family, mutations, SEEDS), detect);
        if (failure) throw new Error(`${seed.format} seed ${seed.source}, mutations ${JSON.stringify(mutations)}: ${failure}`);
      }),
      {
        numRuns: process.env.FUZZ_SEED ? 1 : RUNS,
        seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined,
        path: process.env.FUZZ_PATH,
        endOnFailure: false,
      },
    );

    const failures: string[] = [];
    for (const { shape, mutations } of process.env.FUZZ_SEED ? [] : hostileShapes(seed)) {
      const bytes = mutate(seed, family, mutations, SEEDS);
      for (const detect of [false, true]) {
        const { failure } = await check(seed, bytes, detect);
        if (failure) failures.push(`${shape}: ${failure}`);
      }
    }
    expect(failures).toEqual([]);
    // An unhandled rejection after a report had already ended is a crash too.
    expect(runner.strays).toEqual([]);
    const growth = runner.peakGrowth;
    if (growth > totals.maxRssGrowth) Object.assign(totals, { maxRssGrowth: growth, worstFormat: seed.format });
    expect(growth, `${seed.format}: RSS grew by ${(growth / MB).toFixed(0)} MB`).toBeLessThan(MAX_RSS_GROWTH);
  });
});
