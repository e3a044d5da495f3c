import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { untilStopped } from '../until-stopped.js';

// `ctem cluster`: the production shape on this machine (platform/cluster.ts), up until Ctrl-C.

const USAGE = `usage: ctem cluster [--workers N] [--apis N] [--history-shards N]
  PostgreSQL (embedded unless DATABASE_URL), a Temporal server on it with the Temporal UI, N worker
  and N API processes (ports PORT, PORT+1, ...), each supervised; all on loopback. Needs the server
  built by \`npm run temporal-server:ensure\` (\`npm run cluster\` does it).`;

const count = (text: string | undefined, fallback: number, flag: string, max = 16): number => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`ctem cluster: --${flag} must be a whole number from 1 to ${max}, got ${text}`);
  return n;
};

export async function clusterCommand(config: Config, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      workers: { type: 'string' },
      apis: { type: 'string' },
      'history-shards': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const { CLUSTER_DEFAULTS, startCluster } = await import('../../platform/cluster.js');
  const log = (line: string) => console.log(`[cluster] ${line}`);
  // A data directory of its own: its Temporal state is not the dev server's of `ctem start`.
  const cluster = await startCluster({
    config: { ...config, dataDir: join(config.dataDir, 'cluster') },
    workers: count(values.workers, CLUSTER_DEFAULTS.workers, 'workers'),
    apis: count(values.apis, CLUSTER_DEFAULTS.apis, 'apis'),
    ...(values['history-shards'] ? { historyShards: count(values['history-shards'], CLUSTER_DEFAULTS.historyShards, 'history-shards', 16384) } : {}),
    log,
  });
  const lines = [
    '',
    'CTEM platform is up in its production shape',
    ...cluster.apiUrls.map((url, i) => `  API ${i + 1}            ${url}  (console: ${url}/console)`),
    `  API token        ${config.apiToken ? 'the one in CTEM_API_TOKEN' : '`npx ctem token --cluster` prints it'}`,
    `  Workers          ${cluster.workers.length} processes (ctem worker)`,
    `  Temporal         ${cluster.temporalAddress}  namespace ${cluster.namespace} (server on PostgreSQL)`,
    `  Temporal UI      ${cluster.temporalUiUrl}`,
    cluster.simulator
      ? `  ServiceNow (simulator) ${cluster.serviceNowUrl}  user ${cluster.simulator.user}, password: \`npx ctem token --cluster --simulator\``
      : `  ServiceNow       ${cluster.serviceNowUrl}`,
    `  PostgreSQL       ${cluster.databaseUrl.replace(/:[^:@/]+@/, ':***@')}`,
    `  Data and logs    ${cluster.dataDir} (logs in run/)`,
    '',
    'Ctrl-C stops everything; the next start resumes where this one left off.',
  ];
  return untilStopped(lines, () => cluster.stop(), log);
}
