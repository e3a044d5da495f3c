import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../config/index.js';

// No Docker engine is needed: the deployment files are checked against what the platform reads.

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
function dict(v: unknown, what: string): Dict {
  if (!isDict(v)) throw new Error(`${what}: expected a mapping`);
  return v;
}

// --- docker-compose.yml -----------------------------------------------------------------------

const composeText = read('docker-compose.yml');
const compose = dict(parse(composeText, { merge: true }), 'docker-compose.yml');
const services = dict(compose.services, 'services');
const service = (name: string) => dict(services[name], `services.${name}`);
const APP_SERVICES = ['api', 'worker'] as const;

/** Dummy values for required `${VAR:?message}` substitutions; anything else gets `dummy-<name>`. */
const DUMMIES: Record<string, string> = {
  POSTGRES_PASSWORD: 'dummy-password',
  SERVICENOW_URL: 'https://example.service-now.com',
};

/** Compose interpolation, as `docker compose config` does it when the host environment is empty. */
function interpolate(text: string): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (whole === '$$') return '$';
      if (bare) return '';
      if (op === ':-' || op === '-') return interpolate(arg ?? '');
      if (op === ':?' || op === '?') return DUMMIES[name!] ?? `dummy-${name!.toLowerCase()}`;
      return '';
    });
}

/** A service's environment as the container sees it (mapping or KEY=VALUE list), interpolated. */
function environmentOf(name: string): Record<string, string> {
  const raw = service(name).environment;
  const entries: Array<[string, unknown]> = Array.isArray(raw)
    ? raw.map((line) => {
        const text = String(line);
        const eq = text.indexOf('=');
        return eq < 0 ? [text, ''] : [text.slice(0, eq), text.slice(eq + 1)];
      })
    : Object.entries(dict(raw ?? {}, `services.${name}.environment`));
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v === null || v === undefined ? '' : String(v))]));
}

/** Volume mounts as { source, target }, from short (`src:dst[:mode]`) or long syntax. */
function mountsOf(name: string): Array<{ source: string; target: string }> {
  const raw = service(name).volumes;
  if (!Array.isArray(raw)) return [];
  return raw.map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = ''] = interpolate(v).split(':');
      return { source, target };
    }
    const long = dict(v, `services.${name}.volumes[]`);
    return { source: interpolate(String(long.source ?? '')), target: interpolate(String(long.target ?? '')) };
  });
}

function hostPort(value: string): { host: string; port: string } {
  const url = new URL(value.includes('://') ? value : `grpc://${value}`);
  return { host: url.hostname, port: url.port };
}

// --- config/index.ts -----------------------------------------------------------------------

/** The variable names in config.ts's EnvSchema: `NAME: z...` or `NAME: helper(...)` lines of that object. */
function configVariableNames(): Set<string> {
  const text = read('config/index.ts');
  const start = text.search(/const\s+EnvSchema\s*=\s*z\.object\(\{/);
  if (start < 0) throw new Error('EnvSchema not found in config/index.ts');
  const body = text.slice(start, text.indexOf('\n});', start));
  return new Set([...body.matchAll(/^\s*([A-Z][A-Z0-9_]*)\s*:/gm)].map((m) => m[1]!));
}
const CONFIG_VARS = configVariableNames();

/** What an api or worker process needs when PostgreSQL, Temporal and ServiceNow are not embedded. */
const NEEDED = [
  'DATABASE_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'CTEM_TASK_QUEUE',
  'CTEM_API_TOKEN',
  'SERVICENOW_URL',
  'SERVICENOW_USER',
  'SERVICENOW_PASSWORD',
  'SERVICENOW_WEBHOOK_SECRET',
  'CTEM_DATA_DIR',
  'CTEM_SLA_ACK',
  'CTEM_ESCALATION_INTERVAL',
];

describe('docker-compose.yml', () => {
  it('defines the deployment services', () => {
    for (const name of ['postgres', 'temporal', 'temporal-ui', 'api', 'worker']) expect(services, name).toHaveProperty(name);
    expect(service('api').command).toEqual(['api']);
    expect(service('worker').command).toEqual(['worker']);
  });

  it('runs at least two worker replicas', () => {
    const replicas = Number(dict(service('worker').deploy, 'worker.deploy').replicas);
    expect(replicas).toBeGreaterThanOrEqual(2);
  });

  it('reads the variable names of config/index.ts (sanity check of the extraction)', () => {
    expect(CONFIG_VARS.size).toBeGreaterThanOrEqual(20);
    for (const name of NEEDED) expect(CONFIG_VARS, name).toContain(name);
  });

  for (const name of APP_SERVICES) {
    it(`${name}: passes only variables that config/index.ts reads, and all it needs`, () => {
      const env = environmentOf(name);
      for (const key of Object.keys(env)) expect(CONFIG_VARS, `${name} sets ${key}`).toContain(key);
      for (const key of NEEDED) expect(env[key], `${name} needs ${key}`).toBeTruthy();
    });

    it(`${name}: loadConfig accepts its environment, with config.ts's SLA defaults`, () => {
      const env = environmentOf(name);
      const config = loadConfig(env);
      expect(config.databaseUrl).toBeDefined();
      expect(config.temporal.address).toBeDefined();
      expect(config.serviceNow.url).toBeDefined();
      expect(config.apiToken).toBeDefined();
      // The file repeats the defaults of config.ts; they must not drift apart.
      expect(config.sla).toEqual(loadConfig({}).sla);
      expect(config.temporal.namespace).toBe(loadConfig({}).temporal.namespace);
      expect(config.temporal.taskQueue).toBe(loadConfig({}).temporal.taskQueue);
      expect(config.worker).toEqual(loadConfig({}).worker);
    });

    it(`${name}: DATABASE_URL and TEMPORAL_ADDRESS point at services of this file`, () => {
      const env = environmentOf(name);
      const db = new URL(env.DATABASE_URL!);
      expect(db.protocol).toMatch(/^postgres(ql)?:$/);
      expect(services).toHaveProperty(db.hostname);
      // The credentials and database are the ones the postgres service creates.
      const pg = environmentOf(db.hostname);
      expect(decodeURIComponent(db.username)).toBe(pg.POSTGRES_USER);
      expect(decodeURIComponent(db.password)).toBe(pg.POSTGRES_PASSWORD);
      expect(db.pathname.slice(1)).toBe(pg.POSTGRES_DB ?? pg.POSTGRES_USER);

      const temporal = hostPort(env.TEMPORAL_ADDRESS!);
      expect(services).toHaveProperty(temporal.host);
      expect(temporal.port).toBe('7233');
    });

    it(`${name}: mounts one shared named volume at CTEM_DATA_DIR`, () => {
      const dataDir = environmentOf(name).CTEM_DATA_DIR!;
      expect(posix.isAbsolute(dataDir)).toBe(true);
      const mount = mountsOf(name).find((m) => posix.normalize(m.target) === posix.normalize(dataDir));
      expect(mount, `${name} mounts ${dataDir}`).toBeDefined();
      expect(dict(compose.volumes, 'volumes')).toHaveProperty(mount!.source);
    });

    it(`${name}: waits for a healthy postgres and a started temporal`, () => {
      const deps = dict(service(name).depends_on, `${name}.depends_on`);
      expect(dict(deps.postgres, 'postgres').condition).toBe('service_healthy');
      expect(['service_started', 'service_healthy']).toContain(dict(deps.temporal, 'temporal').condition);
    });
  }

  it('api and worker share the data volume, token and configuration', () => {
    const [api, worker] = APP_SERVICES.map(environmentOf);
    const source = (name: string, dir: string) => mountsOf(name).find((m) => posix.normalize(m.target) === posix.normalize(dir))?.source;
    expect(source('api', api!.CTEM_DATA_DIR!)).toBe(source('worker', worker!.CTEM_DATA_DIR!));
    for (const key of NEEDED) expect(worker![key], key).toBe(api![key]);
  });

  it('api listens on all interfaces on the published port, with a /healthz healthcheck', () => {
    const env = environmentOf('api');
    const config = loadConfig(env);
    expect(config.host).toBe('0.0.0.0');
    const ports = (service('api').ports as unknown[]).map((p) => interpolate(String(p)));
    expect(ports.some((p) => p.endsWith(`:${config.port}`))).toBe(true);
    const test = (dict(service('api').healthcheck, 'api.healthcheck').test as unknown[]).map(String).join(' ');
    expect(test).toContain(`:${config.port}/healthz`);
  });

  it('publishes nothing of Temporal beyond the host\'s loopback (its UI and frontend take no credentials)', () => {
    for (const name of ['temporal', 'temporal-ui', 'postgres']) {
      const ports = ((service(name).ports ?? []) as unknown[]).map((p) => interpolate(String(p)));
      for (const p of ports) expect(p, `${name} publishes ${p}`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('requires the API token and the ServiceNow connection instead of defaulting them', () => {
    const anchor = dict(compose['x-ctem-environment'], 'x-ctem-environment');
    for (const key of ['CTEM_API_TOKEN', 'SERVICENOW_URL', 'SERVICENOW_USER', 'SERVICENOW_PASSWORD']) {
      expect(String(anchor[key]), key).toMatch(new RegExp(`^\\$\\{${key}:\\?`));
    }
  });

  it('sets up temporal on the postgres service, and the UI on temporal', () => {
    const temporal = environmentOf('temporal');
    expect(temporal.DB).toBe('postgres12');
    expect(services).toHaveProperty(temporal.POSTGRES_SEEDS!);
    const pg = environmentOf(temporal.POSTGRES_SEEDS!);
    expect(temporal.POSTGRES_USER).toBe(pg.POSTGRES_USER);
    expect(temporal.POSTGRES_PWD).toBe(pg.POSTGRES_PASSWORD);
    expect(temporal.DEFAULT_NAMESPACE ?? 'default').toBe(environmentOf('worker').TEMPORAL_NAMESPACE);
    expect(services).toHaveProperty(hostPort(environmentOf('temporal-ui').TEMPORAL_ADDRESS!).host);
    const pgHealth = (dict(service('postgres').healthcheck, 'postgres.healthcheck').test as unknown[]).map(String).join(' ');
    expect(pgHealth).toContain('pg_isready');
  });

  it('pins every image tag (no latest)', () => {
    for (const [name, raw] of Object.entries(services)) {
      const s = dict(raw, name);
      if (s.image === undefined) {
        expect(s.build, `${name} has an image or a build`).toBeDefined();
        continue;
      }
      const image = interpolate(String(s.image));
      const tag = /:([^/:@]+)$/.exec(image)?.[1];
      expect(tag, `${name}: ${image} has a tag`).toBeDefined();
      expect(tag, `${name}: ${image}`).not.toBe('latest');
    }
  });

  it('declares every named volume it mounts', () => {
    const declared = dict(compose.volumes ?? {}, 'volumes');
    for (const name of Object.keys(services)) {
      for (const { source } of mountsOf(name)) {
        if (source && !source.startsWith('.') && !isAbsolute(source)) expect(declared, `${name} mounts ${source}`).toHaveProperty(source);
      }
    }
  });
});

// --- Dockerfile -------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
function dockerfile(): Instruction[] {
  const lines = read('Dockerfile').split('\n');
  const out: Instruction[] = [];
  let current = '';
  for (const line of lines) {
    if (/^\s*#/.test(line)) continue; // comments, also between continued lines
    const cont = /\\\s*$/.test(line);
    current += `${line.replace(/\\\s*$/, '')} `;
    if (cont) continue;
    const text = current.trim();
    current = '';
    if (!text) continue;
    const m = /^(\S+)\s*(.*)$/.exec(text)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
  }
  return out;
}

describe('Dockerfile', () => {
  const instructions = dockerfile();
  const of = (op: string) => instructions.filter((i) => i.op === op);

  it('builds on a pinned node 20 bookworm-slim image', () => {
    const froms = of('FROM');
    expect(froms.length).toBeGreaterThan(0);
    for (const from of froms) expect(from.args.split(/\s+/)[0]).toBe('node:20-bookworm-slim');
  });

  it('runs bin/ctem.js, `start` by default, as a non-root user', () => {
    const entrypoint = of('ENTRYPOINT').at(-1);
    expect(JSON.parse(entrypoint!.args)).toEqual(['node', 'bin/ctem.js']);
    expect(JSON.parse(of('CMD').at(-1)!.args)).toEqual(['start']);
    const user = of('USER').at(-1)?.args.trim();
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    expect(instructions.indexOf(of('USER').at(-1)!)).toBeLessThan(instructions.indexOf(entrypoint!));
    expect(existsSync(join(root, 'bin/ctem.js'))).toBe(true);
  });

  it('installs production dependencies from the lockfile, with tsx (bin/ctem.js runs the sources through it)', () => {
    const runs = of('RUN').map((r) => r.args).join('\n');
    expect(runs).toMatch(/npm ci\b[^\n]*--omit=dev/);
    const pkg = JSON.parse(read('package.json')) as { dependencies?: Record<string, string> };
    if (!pkg.dependencies?.tsx) expect(runs, 'tsx is a devDependency: the image must add it').toMatch(/npm install\b[^\n]*tsx@/);
  });

  it('copies folders that exist, including every source folder of tsconfig.json', () => {
    const copied = new Set<string>();
    for (const copy of of('COPY')) {
      const parts = copy.args.split(/\s+/).filter(Boolean);
      if (parts.some((p) => p.startsWith('--from'))) continue;
      const sources = parts.filter((p) => !p.startsWith('--')).slice(0, -1);
      for (const source of sources) {
        expect(existsSync(join(root, source)), `COPY ${source}`).toBe(true);
        copied.add(source.replace(/\/$/, ''));
      }
    }
    const tsconfig = JSON.parse(read('tsconfig.json')) as { include: string[] };
    const sourceDirs = tsconfig.include.filter((p) => p !== 'test' && existsSync(join(root, p)) && statSync(join(root, p)).isDirectory());
    for (const dir of [...sourceDirs, 'bin', 'package.json', 'package-lock.json']) expect(copied, dir).toContain(dir);
  });

  it('creates the data directory of the compose file, writable by the runtime user', () => {
    // A named volume mounted there starts with the image's ownership; otherwise it is root's.
    const dataDir = environmentOf('worker').CTEM_DATA_DIR!;
    const user = of('USER').at(-1)!.args.trim();
    const runs = of('RUN').map((r) => r.args);
    expect(runs.some((r) => r.includes(`mkdir -p ${dataDir}`))).toBe(true);
    expect(runs.some((r) => new RegExp(`chown\\s+(-R\\s+)?${user}(:\\S+)?\\s+${dataDir}\\b`).test(r))).toBe(true);
  });

  it('.dockerignore keeps local state out but lets the copied sources in', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['node_modules', '.data', '.tools', '.git', 'test']) expect(ignored, entry).toContain(entry);
    for (const copy of of('COPY')) {
      if (copy.args.includes('--from')) continue;
      for (const source of copy.args.split(/\s+/).slice(0, -1)) expect(ignored, source).not.toContain(source.replace(/\/$/, ''));
    }
  });
});
