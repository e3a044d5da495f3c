import { ConfigError, loadConfig } from '../platform/config.js';
import { startPlatform, type Roles } from '../platform/start.js';

const USAGE = `usage: ctem <command>

  start     run the whole platform (embedded PostgreSQL, Temporal dev server and ServiceNow
            simulator unless DATABASE_URL, TEMPORAL_ADDRESS and SERVICENOW_URL point elsewhere)
  api       run only the HTTP API
  worker    run only the Temporal worker
  help      this text`;

const ROLES: Record<string, Roles> = {
  start: { api: true, worker: true },
  api: { api: true, worker: false },
  worker: { api: false, worker: true },
};

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'help';
  const roles = ROLES[command];
  if (!roles) {
    console.log(USAGE);
    return command === 'help' || command === '--help' ? 0 : 2;
  }
  const config = loadConfig();
  const log = (line: string) => console.log(`[ctem] ${line}`);
  const platform = await startPlatform(config, roles, log);
  const lines = [
    '',
    'CTEM platform is up',
    ...(platform.apiUrl ? [`  API              ${platform.apiUrl}  (OpenAPI: ${platform.apiUrl}/api/v1/openapi.json)`] : []),
    ...(platform.apiUrl ? [`  API token        ${platform.apiToken}`] : []),
    `  Temporal         ${platform.temporalAddress}  namespace ${config.temporal.namespace}`,
    ...(platform.temporalUiUrl ? [`  Temporal UI      ${platform.temporalUiUrl}`] : []),
    platform.simulator
      ? `  ServiceNow (simulator) ${platform.serviceNowUrl}  user ${platform.simulator.user} / ${platform.simulator.password}`
      : `  ServiceNow       ${platform.serviceNowUrl}`,
    `  PostgreSQL       ${platform.databaseUrl.replace(/:[^:@/]+@/, ':***@')}`,
    `  Data             ${config.dataDir}`,
    '',
    ...(platform.apiUrl
      ? [`Try: curl -H "Authorization: Bearer ${platform.apiToken}" --data-binary @report.json ${platform.apiUrl}/api/v1/scans?owner=alice`]
      : []),
    'Ctrl-C stops everything; the next start resumes where this one left off.',
  ];
  console.log(lines.join('\n'));
  await new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  log('stopping...');
  await platform.stop();
  log('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : `ctem: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
