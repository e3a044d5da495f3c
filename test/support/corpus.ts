import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The shared real-data corpus (scanner reports, threat-intel feeds) lives beside the repository,
// not in it. CTEM_CORPUS_DIR points elsewhere; without it, real-data tests are skipped with a reason.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const corpusDir = resolve(process.env.CTEM_CORPUS_DIR ?? join(repoRoot, '..', 'shared', 'corpus'));
export const hasCorpus = existsSync(join(corpusDir, 'README.md'));
export const corpusSkipReason = `real-data corpus not found at ${corpusDir} (set CTEM_CORPUS_DIR)`;

export const corpusFile = (...parts: string[]) => join(corpusDir, ...parts);
