import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  CLUSTER_DEFAULTS,
  CLUSTER_ONLY_VARIABLES,
  CLUSTER_SERVICES,
  ctemChildEnv,
  fixedHistoryShards,
  MAX_MEMBERSHIP_PORT,
  renderTemporalServerConfig,
  renderUiServerConfig,
  temporalPortsFrom,
} from '../../platform/cluster.js';

// `ctem cluster` and docker-compose.yml describe one deployment two ways: the same services, the
// same variables on the ctem processes, the same Temporal server and UI versions. No Docker engine
// and no Temporal server are needed: the files and the cluster's own declarations are compared.

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');
type Dict = Record<string, unknown>;
const compose = parse(read('docker-compose.yml'), { merge: true }) as Dict;
const services = compose.services as Record<string, Dict>;
const environmentOf = (name: string) => Object.keys((services[name]!.environment ?? {}) as Dict);
const pin = (name: string) => {
  const m = new RegExp(`export const ${name} = '([^']+)'`).exec(read('scripts/ensure-temporal-server.mjs'));
  if (!m) throw new Error(`${name} not found in scripts/ensure-temporal-server.mjs`);
  return m[1]!;
};

const wired = Object.keys(
  ctemChildEnv({
    dataDir: '/d',
    databaseUrl: 'postgres://u:p@h:5432/ctem',
    temporalAddress: 'h:7233',
    namespace: 'default',
    temporalUiUrl: 'http://h:8233',
    apiToken: 't',
    serviceNow: { url: 'http://s', user: 'u', password: 'p', webhookSecret: 'w' },
  }),
);

describe('ctem cluster and docker-compose.yml stay in step', () => {
  it('run the same services', () => {
    expect(Object.keys(services).sort()).toEqual([...CLUSTER_SERVICES].sort());
  });

  it('run as many workers and APIs by default', () => {
    expect(Number((services.worker!.deploy as Dict).replicas)).toBe(CLUSTER_DEFAULTS.workers);
    expect(Number(((services.api!.deploy ?? { replicas: 1 }) as Dict).replicas)).toBe(CLUSTER_DEFAULTS.apis);
  });

  for (const name of ['api', 'worker']) {
    it(`${name}: compose sets every variable that wires the cluster's ctem processes`, () => {
      const env = environmentOf(name);
      for (const key of wired) expect(env, `${name} sets ${key}`).toContain(key);
    });

    it(`${name}: whatever else compose sets, the cluster's processes take from the operator's environment`, () => {
      // Either wired by the cluster, or one of the settings it passes through unchanged (not
      // infrastructure: no address, path or credential of a service the cluster runs itself).
      const passedThrough = environmentOf(name).filter((k) => !wired.includes(k));
      for (const key of passedThrough) {
        expect(key, `${name}: ${key} is wiring the cluster does not set`).not.toMatch(/^(DATABASE_|TEMPORAL_ADDRESS|CTEM_DATA_DIR)/);
      }
    });
  }

  it('keeps the cluster-only variables to per-process and per-machine concerns', () => {
    for (const key of CLUSTER_ONLY_VARIABLES) expect(wired, key).not.toContain(key);
    // compose sets PORT on the api container (one port per container), never a host-specific bundle.
    expect(environmentOf('worker')).not.toContain('CTEM_WORKFLOW_BUNDLE');
  });

  it('run the Temporal server and UI versions that scripts/ensure-temporal-server.mjs builds', () => {
    expect(String(services.temporal!.image)).toBe(`temporalio/auto-setup:${pin('TEMPORAL_SERVER_VERSION')}`);
    expect(String(services['temporal-ui']!.image)).toBe(`temporalio/ui:${pin('TEMPORAL_UI_SERVER_VERSION')}`);
  });

  it('put Temporal on PostgreSQL with the same plugin as compose (postgres12)', () => {
    const config = renderTemporalServerConfig({
      db: { host: '127.0.0.1', port: 5433, user: 'postgres', password: 'secret' },
      ports: temporalPortsFrom(7233),
      historyShards: 4,
      dynamicConfigFile: '/d/dynamic.yaml',
    });
    expect((services.temporal!.environment as Dict).DB).toBe('postgres12');
    const stores = Object.values(config.persistence.datastores).map((s) => s.sql);
    expect(stores.map((s) => s.pluginName)).toEqual(['postgres12', 'postgres12']);
    expect(stores.map((s) => s.databaseName)).toEqual(['temporal', 'temporal_visibility']);
  });
});

describe('cluster configuration', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('renders a server config bound to loopback on the given ports, shards and database', () => {
    const ports = temporalPortsFrom(17233);
    const config = renderTemporalServerConfig({ db: { host: '127.0.0.1', port: 5433, user: 'postgres', password: 's3cret' }, ports, historyShards: 8, dynamicConfigFile: '/d/dyn.yaml' });
    expect(config.persistence.numHistoryShards).toBe(8);
    expect(config.services.frontend.rpc).toEqual({ grpcPort: 17233, membershipPort: 16933, bindOnLocalHost: true, httpPort: 17243 });
    expect(config.services.history.rpc.grpcPort).toBe(17234);
    expect(config.clusterMetadata.clusterInformation.active.rpcAddress).toBe('127.0.0.1:17233');
    expect(config.global.metrics.prometheus.listenAddress).toBe('127.0.0.1:18000');
    expect(config.persistence.datastores['postgres-default'].sql).toMatchObject({ connectAddr: '127.0.0.1:5433', user: 'postgres', password: 's3cret' });
    expect(config.dynamicConfigClient.filepath).toBe('/d/dyn.yaml');
    // Every port distinct.
    expect(new Set(Object.values(ports)).size).toBe(Object.keys(ports).length);
  });

  it('refuses membership ports Temporal cannot store', () => {
    const ports = { ...temporalPortsFrom(7233), workerMembership: MAX_MEMBERSHIP_PORT + 1 };
    expect(() => renderTemporalServerConfig({ db: { host: 'h', port: 1, user: 'u', password: 'p' }, ports, historyShards: 4, dynamicConfigFile: '/d' })).toThrow(/workerMembership port 32768 .*smallint/);
  });

  it('renders the UI server on loopback against the frontend', () => {
    expect(renderUiServerConfig({ port: 8233, temporalAddress: '127.0.0.1:7233', namespace: 'default' })).toMatchObject({
      host: '127.0.0.1',
      port: 8233,
      temporalGrpcAddress: '127.0.0.1:7233',
      defaultNamespace: 'default',
    });
  });

  it('fixes the history shard count at the first start and refuses another later', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctem-shards-'));
    dirs.push(dir);
    const file = join(dir, 'temporal', 'history-shards');
    expect(fixedHistoryShards(file, undefined)).toBe(CLUSTER_DEFAULTS.historyShards);
    expect(fixedHistoryShards(file, undefined)).toBe(CLUSTER_DEFAULTS.historyShards);
    expect(fixedHistoryShards(file, CLUSTER_DEFAULTS.historyShards)).toBe(CLUSTER_DEFAULTS.historyShards);
    expect(() => fixedHistoryShards(file, 16)).toThrow(/created with 4 history shards.*cannot change/);
    const other = join(dir, 'other');
    expect(fixedHistoryShards(other, 16)).toBe(16);
    expect(fixedHistoryShards(other, undefined)).toBe(16);
  });
});
