#!/usr/bin/env node
// Finds or builds the pinned Temporal server, its SQL schema tool and the Temporal UI server for
// `ctem cluster` (the production shape on one machine), then records where they are in
// .tools/temporal-server.json. Neither npm nor PyPI ships these binaries, so they are built from
// their Go modules with `go install` (a few minutes the first time, then cached in .tools/).
// The PostgreSQL schemas ship inside the server's module; they are copied into the cache beside
// the binaries so that a run never depends on the Go module cache.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// One pin for each: the server the Temporal CLI 1.5.1 embeds, and the UI that CLI serves.
export const TEMPORAL_SERVER_VERSION = '1.29.1';
export const TEMPORAL_UI_SERVER_VERSION = '2.42.1';
const SERVER_MODULE = 'go.temporal.io/server';
const UI_MODULE = 'github.com/temporalio/ui-server/v2';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const toolsDir = resolve(process.env.CTEM_TOOLS_DIR ?? join(root, '.tools'));
const serverDir = join(toolsDir, `temporal-server-${TEMPORAL_SERVER_VERSION}`);
const uiDir = join(toolsDir, `temporal-ui-server-${TEMPORAL_UI_SERVER_VERSION}`);
const recordFile = join(toolsDir, 'temporal-server.json');

/** Where each piece lives in the cache; `stamp` is written last, so a half-built cache is rebuilt. */
export const serverTools = {
  server: join(serverDir, 'temporal-server'),
  sqlTool: join(serverDir, 'temporal-sql-tool'),
  schemaDir: join(serverDir, 'schema', 'postgresql', 'v12'),
  stamp: join(serverDir, 'installed.json'),
  uiServer: join(uiDir, 'temporal-ui-server'),
  uiStamp: join(uiDir, 'installed.json'),
};

const log = (msg) => process.stderr.write(`[temporal-server] ${msg}\n`);

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function stamped(stamp, version, files) {
  if (!files.every((f) => existsSync(f)) || !existsSync(stamp)) return false;
  try {
    return JSON.parse(readFileSync(stamp, 'utf8')).version === version;
  } catch {
    return false;
  }
}

function goCommand() {
  const go = process.env.GO ?? onPath('go');
  if (!go) {
    throw new Error(
      `Go is not on PATH: the Temporal server ${TEMPORAL_SERVER_VERSION} is built from its Go module (go install). ` +
        'Install Go 1.23 or newer, or point TEMPORAL_ADDRESS at an existing Temporal server and run `ctem api` / `ctem worker` instead.',
    );
  }
  return go;
}

/** `go install` of `packages` at `version` into a scratch GOBIN, then each binary renamed into `dir`. */
function goInstall(go, dir, packages, version, names) {
  const scratch = join(dir, `.gobin-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  try {
    execFileSync(go, ['install', ...packages.map((p) => `${p}@v${version}`)], {
      stdio: ['ignore', 'inherit', 'inherit'],
      // Static binaries: no C toolchain needed, and they run on any Linux of the same architecture.
      env: { ...process.env, GOBIN: scratch, CGO_ENABLED: '0', GOFLAGS: `${process.env.GOFLAGS ?? ''} -trimpath`.trim() },
    });
    for (const [built, name] of Object.entries(names)) renameSync(join(scratch, built), join(dir, name));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The module's directory in the Go module cache (downloaded if missing). */
function moduleDir(go, module, version) {
  const out = execFileSync(go, ['mod', 'download', '-json', `${module}@v${version}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = JSON.parse(out).Dir;
  if (!dir || !existsSync(dir)) throw new Error(`go mod download gave no directory for ${module}@v${version}`);
  return dir;
}

function buildServer(go) {
  log(`building Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool with go install (minutes, once)...`);
  rmSync(serverTools.stamp, { force: true });
  mkdirSync(serverDir, { recursive: true });
  goInstall(go, serverDir, [`${SERVER_MODULE}/cmd/server`, `${SERVER_MODULE}/cmd/tools/sql`], TEMPORAL_SERVER_VERSION, {
    server: 'temporal-server',
    sql: 'temporal-sql-tool',
  });
  const schema = join(moduleDir(go, SERVER_MODULE, TEMPORAL_SERVER_VERSION), 'schema', 'postgresql', 'v12');
  rmSync(serverTools.schemaDir, { recursive: true, force: true });
  // The module cache is read-only; the copy is made writable so that a rebuild can replace it.
  cpSync(schema, serverTools.schemaDir, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', join(serverDir, 'schema')]);
  writeFileSync(serverTools.stamp, JSON.stringify({ version: TEMPORAL_SERVER_VERSION, module: SERVER_MODULE }, null, 2) + '\n');
}

function buildUiServer(go) {
  log(`building Temporal UI server ${TEMPORAL_UI_SERVER_VERSION} with go install (a minute, once)...`);
  rmSync(serverTools.uiStamp, { force: true });
  mkdirSync(uiDir, { recursive: true });
  goInstall(go, uiDir, [`${UI_MODULE}/cmd/server`], TEMPORAL_UI_SERVER_VERSION, { server: 'temporal-ui-server' });
  writeFileSync(serverTools.uiStamp, JSON.stringify({ version: TEMPORAL_UI_SERVER_VERSION, module: UI_MODULE }, null, 2) + '\n');
}

function serverVersion(binary) {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  // "temporal version 1.29.1"
  return out.status === 0 ? /version\s+(\S+)/.exec(out.stdout)?.[1] : undefined;
}

/** The cached tools, built first when missing; returns their paths and records them. */
export function ensureTemporalServer() {
  const serverReady = stamped(serverTools.stamp, TEMPORAL_SERVER_VERSION, [serverTools.server, serverTools.sqlTool, serverTools.schemaDir]);
  const uiReady = stamped(serverTools.uiStamp, TEMPORAL_UI_SERVER_VERSION, [serverTools.uiServer]);
  if (!serverReady || !uiReady) {
    const go = goCommand();
    if (!serverReady) buildServer(go);
    if (!uiReady) buildUiServer(go);
  }
  const version = serverVersion(serverTools.server);
  if (version !== TEMPORAL_SERVER_VERSION) {
    throw new Error(`${serverTools.server} reports version ${version ?? 'none'}, pinned ${TEMPORAL_SERVER_VERSION}: delete ${serverDir} and run this again`);
  }
  const record = {
    version: TEMPORAL_SERVER_VERSION,
    server: serverTools.server,
    sqlTool: serverTools.sqlTool,
    schemaDir: serverTools.schemaDir,
    uiVersion: TEMPORAL_UI_SERVER_VERSION,
    uiServer: serverTools.uiServer,
  };
  mkdirSync(toolsDir, { recursive: true });
  writeFileSync(recordFile, JSON.stringify(record, null, 2) + '\n');
  log(`using Temporal server ${TEMPORAL_SERVER_VERSION} and UI server ${TEMPORAL_UI_SERVER_VERSION} from ${toolsDir}`);
  return record;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureTemporalServer();
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
