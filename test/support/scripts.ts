import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..');

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string | undefined>): Promise<ScriptRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, args, { cwd: root, env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

/**
 * Runs one of the project's scripts as `npm run` would (a child process through tsx, from the
 * project root). `env` adds to this process's environment; an undefined value removes the variable.
 */
export function runScript(script: string, args: string[], env: Record<string, string | undefined> = {}): Promise<ScriptRun> {
  return run(['--import', 'tsx', script, ...args], env);
}

/** The `ctem` command as a user runs it (`bin/ctem.js` from the project root); `env` as for runScript. */
export function runCtem(args: string[], env: Record<string, string | undefined> = {}): Promise<ScriptRun> {
  return run(['bin/ctem.js', ...args], env);
}

/** The environment that points `ctem` at a running platform. */
export const platformEnv = (platform: { apiUrl?: string; env: Record<string, string> }) => ({ CTEM_API_URL: platform.apiUrl!, CTEM_API_TOKEN: platform.env.CTEM_API_TOKEN! });
