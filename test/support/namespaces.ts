import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Each test file runs in a Temporal namespace of its own on the shared dev server, so workflow and
// schedule ids (`remediation:<fix key>`, the orphan-report schedule...) never collide across files.

const testDir = join(dirname(fileURLToPath(import.meta.url)), '..');

export function namespaceForTestFile(file: string): string {
  return `test-${basename(file).replace(/\.test\.ts$/, '').replace(/[^A-Za-z0-9-]+/g, '-')}`;
}

/** One namespace per test file, created when the dev server starts. */
export function testNamespaces(): string[] {
  return (readdirSync(testDir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.test.ts'))
    .map(namespaceForTestFile);
}
