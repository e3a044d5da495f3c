import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectors, readHead, ReportError, type NormalizedFinding, type ParseOptions } from '../../discovery/connectors/index.js';
import { corpusFile, corpusSkipReason, hasCorpus } from './corpus.js';

// What the tests of one scanner connector need: parse a file with a named format (all findings,
// or the ReportError it refuses with), write small inputs to a scratch folder, and check that
// detection is exclusive against every fixture and every corpus report.

export const fixtureRoot = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const fixtureFile = (dir: string, name: string) => join(fixtureRoot, dir, name);

function connectorOf(format: string) {
  const connector = connectors.find((c) => c.format === format);
  if (!connector) throw new Error(`no connector ${format}`);
  return connector;
}

export async function parseAs(format: string, file: string, options: ParseOptions = {}): Promise<NormalizedFinding[]> {
  const out: NormalizedFinding[] = [];
  for await (const f of connectorOf(format).parse(file, options)) out.push(f);
  return out;
}

/** The ReportError a file is refused with; fails the test when the file parses. */
export async function parseErrorAs(format: string, file: string, options: ParseOptions = {}): Promise<ReportError> {
  try {
    await parseAs(format, file, options);
  } catch (err) {
    expect(err).toBeInstanceOf(ReportError);
    return err as ReportError;
  }
  throw new Error(`accepted ${file}`);
}

/** A scratch folder for the test file (made before its tests, removed after): writes a string or JSON. */
export function scratchFiles(prefix: string): (name: string, content: unknown) => Promise<string> {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `ctem-${prefix}-`));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return async (name, content) => {
    const file = join(dir, name);
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
}

/** Every format whose detector claims the file. */
export async function detectedFormats(file: string): Promise<string[]> {
  const head = await readHead(file);
  return connectors.filter((c) => c.detect(head)).map((c) => c.format);
}

/** The data files below a folder (`/`-separated, relative), without READMEs, licences and manifests. */
export const dataFiles = (root: string) =>
  (readdirSync(root, { recursive: true }) as string[])
    .map((p) => p.split('\\').join('/'))
    .filter((p) => statSync(join(root, p)).isFile() && !/(MANIFEST\.tsv|README\.md|SHA256SUMS|LICENSE[^/]*)$/.test(p));

/**
 * Detection is exclusive: each fixture folder in `own` (folder -> format) is claimed by its format
 * alone, and no other fixture and no corpus report is claimed by any of those formats.
 */
export function describeExclusiveDetection(own: Record<string, string>): void {
  const formats = new Set(Object.values(own));
  const ownerOf = (path: string) => Object.entries(own).find(([dir]) => path.startsWith(`${dir}/`))?.[1];
  const name = [...formats].join(', ');
  describe(`${name}: detection against every other format`, () => {
    it.each(dataFiles(fixtureRoot))('fixtures/%s', async (path) => {
      const claimed = await detectedFormats(join(fixtureRoot, path));
      const owner = ownerOf(path);
      if (owner) expect(claimed, path).toEqual([owner]);
      else expect(claimed.filter((f) => formats.has(f)), path).toEqual([]);
    });

    // One test over the whole corpus (skipped, with the reason, when it is absent).
    it.skipIf(!hasCorpus)(`claims no corpus report${hasCorpus ? '' : ` (${corpusSkipReason})`}`, async () => {
      const files = dataFiles(corpusFile('scanners'));
      expect(files.length).toBeGreaterThan(70);
      const claimed: string[] = [];
      for (const path of files) {
        if ((await detectedFormats(corpusFile('scanners', path))).some((f) => formats.has(f))) claimed.push(path);
      }
      expect(claimed).toEqual([]);
    });
  });
}
