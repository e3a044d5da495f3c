import { open } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseAs, parseErrorAs, scratchFiles } from '../support/connectors.js';

// Inputs the connector fuzzer (fuzz-connectors.test.ts) found mishandled, one test per input shape.

const fixture = scratchFiles('fuzz-regressions');
const MB = 1024 * 1024;

/** Writes head, then `size` bytes of `fill`, then tail, without building the whole file in memory. */
async function bigFile(name: string, head: string, fill: string, size: number, tail = ''): Promise<string> {
  const file = await fixture(name, head);
  const handle = await open(file, 'a');
  try {
    const block = Buffer.alloc(MB, fill);
    for (let written = 0; written < size; written += block.length) await handle.write(block, 0, Math.min(block.length, size - written));
    await handle.write(tail);
  } finally {
    await handle.close();
  }
  return file;
}

describe('CSV whose first line has no line break for megabytes', () => {
  // csv-parse looks for the line ending byte by byte until it finds one, allocating as it goes:
  // a 20 MB first line took 27 s to refuse (Qualys PCI seed, quote left open, 20 MB inserted).
  it('is refused at the record limit in seconds, naming the file and format', async () => {
    const file = await bigFile('long-first-line.csv', 'IP,QID,VULN TITLE', 'A', 20 * MB, '\n10.0.0.1,1,x\n');
    const started = performance.now();
    const err = await parseErrorAs('qualys-pci-csv', file);
    expect(performance.now() - started).toBeLessThan(8_000);
    expect(err.message).toMatch(/^long-first-line\.csv: qualys-pci-csv: not valid CSV \(Max Record Size/);
  });

  it('ordinary files keep their line ending (CRLF, LF or CR) and their quoted line breaks', async () => {
    for (const eol of ['\r\n', '\n', '\r']) {
      const file = await fixture('eol.csv', ['IP,QID,VULN TITLE,SEVERITY', '10.0.0.1,38173,"multi', 'line title",High', ''].join(eol));
      const findings = await parseAs('qualys-pci-csv', file);
      expect(findings.map((f) => [f.asset.assetKey, f.issueId, f.title]), JSON.stringify(eol)).toEqual([['host:10.0.0.1', 'qualys:38173', `multi${eol}line title`]]);
    }
  });
});
