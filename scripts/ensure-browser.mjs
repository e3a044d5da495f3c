#!/usr/bin/env node
// Finds Chromium for the console's browser tests (driven by playwright-core, which downloads no
// browser). Routes, in order: CTEM_CHROMIUM; chromium on the usual paths; Debian's `chromium`
// package through apt-get when running as root (or with sudo). Without one, it says how to get it
// and fails, so the browser tests never pass by not running.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

function found() {
  if (process.env.CTEM_CHROMIUM) return existsSync(process.env.CTEM_CHROMIUM) ? process.env.CTEM_CHROMIUM : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

function run(command, args) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return result.status === 0;
}

if (!found()) {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = !root && spawnSync('sudo', ['-n', 'true']).status === 0;
  if ((root || sudo) && spawnSync('apt-get', ['--version']).status === 0) {
    const prefix = root ? [] : ['-n', 'apt-get'];
    const apt = (args) => (root ? run('apt-get', args) : run('sudo', [...prefix, ...args]));
    console.error('ensure-browser: installing Debian chromium for the console tests');
    if (!apt(['install', '-y', '-q', 'chromium'])) apt(['update', '-q']) && apt(['install', '-y', '-q', 'chromium']);
  }
}

const path = found();
if (!path) {
  console.error('ensure-browser: no Chromium found. Install it (Debian/Ubuntu: apt-get install -y chromium) or set CTEM_CHROMIUM to a Chromium executable.');
  process.exit(1);
}
console.error(`ensure-browser: ${path}`);
