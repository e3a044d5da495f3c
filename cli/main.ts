import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, parseWorkerQueues } from '../config/index.js';
import type { Roles } from '../platform/start.js';
import { untilStopped } from './until-stopped.js';

const USAGE = `usage: ctem <command>

  start               run the whole platform (embedded PostgreSQL, Temporal dev server and ServiceNow
                      simulator unless DATABASE_URL, TEMPORAL_ADDRESS and SERVICENOW_URL point elsewhere;
                      with CTEM_ITSM=jira also the Jira simulator unless JIRA_BASE_URL does)
  api                 run only the HTTP API
  worker              run only the Temporal worker [--queues both|bulk,remediation,legacy] (CTEM_WORKER_QUEUES;
                      also for start)
  cluster             the production shape on this machine: PostgreSQL, a Temporal server and UI, two
                      workers and two APIs, supervised, on loopback [--workers N] [--apis N] [--history-shards N]
  parse FILE          print a report's normalized findings as JSON lines (no database); what it
                      skipped or did not understand goes to stderr as warnings
                      [--format F] [--target NAME] [--strict: a warning is an error, exit 1]
  ingest FILE         upload a report to the running platform and wait for its discovery run
                      [--format F] [--source S] [--target NAME] [--owner USER] [--complete true|false]
                      [--vantage internet|internal] [--strict] [--no-wait] [--progress|--no-progress]
  intel import FILE   import a FIRST EPSS or CISA KEV file through the running platform (checked, then active
                      or rejected) [--kind epss|kev] [--stage-only] [--force check,...] [--as-of DATE] [--progress]
  intel list          feed versions, their status and checks
  intel promote KIND VERSION   activate a staged version [--force check,...]
  intel fetch KIND    fetch a feed from its configured URL now
  exposures list      open exposures with tier, score, due date and ticket (alias: findings) [--tier T] [--status S]
                      [--scope S] [--issue ID] [--asset A] [--owner O] [--business-service S] [--q TEXT] [--ticket KEY]
                      [--kev B] [--internet-facing B] [--limit N] [--after CURSOR] [--json]
  exposures show ID   one exposure and why: every factor of its explanation [--json]
  tickets list        golden tickets [--state S] [--owner O] [--action A] [--orphaned B] [--escalated B] [--overdue B]
                      [--limit N] [--after CURSOR] [--json]
  tickets show KEY    one golden ticket [--json]
  ticket ack|resolve KEY --by USER [--note T]   acknowledge or resolve as the owner would
  ticket accept-risk KEY --requester U --approver U --reason T --expires ISO-DATE
  tickets audit       does every urgent finding reach a person, one ticket per fix? (exit 1 if not) [--json]
  metrics response    was the response fast and adequate? detection to acknowledgement, fix and verification,
                      SLA attainment, overdue and re-opened tickets [--group-by tier|owner|business_service]
                      [--since ISO] [--until ISO] [--scope NAME] [--json]
  metrics overview|executive   the program's figures from the latest daily snapshot: backlog, KEV,
                      appetite, SLA, escalations / MTTD, MTTR, business services, overdue owners [--scope NAME] [--json]
  backtest --later-kev FILE   would the policy have flagged at t0 what a later CISA KEV lists? effort,
                      coverage and efficiency beside EPSS and CVSS baselines [--universe estate|cves|records]
                      [--policy VERSION ...] [--epss V] [--kev V] [--cve V] [--json]
  validate evidence FILE   import validation evidence (Nuclei JSON lines, OWASP ZAP JSON/XML, pentest or
                      BAS results in the generic CSV/JSON format) [--format F] [--json]
  validate run SCOPE  validate a saved scope (or \`estate\`) now and wait for the results [--no-wait] [--json]
  validate paths      attack paths to crown jewels: choke points and the fixes that cut the most [--limit N] [--json]
  gate REPORT         CI/CD gate: decide a report before deploy; exit 1 when the block rule says block
                      [--block act|act+attend|kev] [--honour-exceptions] [--json] [--sarif FILE]; standalone
                      with --epss FILE --kev FILE [--cve-records DIR] [--policy FILE|VERSION] (ctem gate --help)
  hypotheses list|show NAME   saved hunting hypotheses, their result now and campaigns [--json]
  hypotheses save NAME --statement TEXT --query JSON   save a hypothesis (a scope selector plus exposure conditions)
  hypotheses run|campaign NAME   ask it now, or start a campaign from it [--json]
  token               print the API token of the local platform (CTEM_API_TOKEN, else the one generated in
                      the data dir) [--simulator: the ServiceNow / Jira simulator's password instead]
                      [--cluster: those of \`ctem cluster\`]
  identities list|create|show|disable|enable|token issue|token list|token revoke   users, service accounts,
                      their roles and API tokens (ctem identities --help)
  audit list          the audit trail, newest first [--actor A] [--action PREFIX] [--target T] [--outcome O]
                      [--since ISO] [--until ISO] [--limit N] [--after CURSOR] [--json]
  audit verify        check the audit trail's hash chain; exit 1 at the first changed or removed entry [--json]
  backup              back up the database (one consistent snapshot, every table) and the data directory's files
                      to a .tar.gz [--out FILE]; Temporal's state is not in it (docs/operations.md)
  restore FILE        restore a backup into an empty database (the platform stopped), checking every row count
                      and SHA-256 [--force: replace the data the database holds]
  --version           the version of this ctem
  help                this text`;

const ROLES: Record<string, Roles> = {
  start: { api: true, worker: true },
  api: { api: true, worker: false },
  worker: { api: false, worker: true },
};

async function serve(command: string, roles: Roles, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { queues: { type: 'string' } } });
  if (values.queues !== undefined && !roles.worker) throw new Error(`${command}: --queues is an option of the worker (ctem worker, ctem start)`);
  const { startPlatform } = await import('../platform/start.js');
  const { redact } = await import('../platform/logging.js');
  const config = loadConfig();
  if (values.queues !== undefined) config.worker.queues = parseWorkerQueues(values.queues, '--queues');
  // Start-up and shutdown lines pass the same redaction as every other log line.
  const log = (line: string) => console.log(`[ctem] ${redact(line)}`);
  const platform = await startPlatform(config, roles, log);
  const lines = [
    '',
    'CTEM platform is up',
    ...(platform.apiUrl ? [`  API              ${platform.apiUrl}  (OpenAPI: ${platform.apiUrl}/api/v1/openapi.json)`] : []),
    ...(platform.apiUrl ? [`  Console          ${platform.apiUrl}/console  (sign in with the API token)`] : []),
    // Secrets stay out of the output (it ends up in logs): `ctem token` prints them on demand.
    ...(platform.apiUrl ? [`  API token        ${config.apiToken ? 'the one in CTEM_API_TOKEN' : '`npx ctem token` prints it'}`] : []),
    `  Temporal         ${platform.temporalAddress}  namespace ${config.temporal.namespace}`,
    ...(platform.temporalUiUrl ? [`  Temporal UI      ${platform.temporalUiUrl}`] : []),
    platform.simulator
      ? `  ServiceNow (simulator) ${platform.serviceNowUrl}  user ${platform.simulator.user}, password: \`npx ctem token --simulator\``
      : `  ServiceNow       ${platform.serviceNowUrl}`,
    ...(platform.jiraSimulator
      ? [`  Jira (simulator) ${platform.jiraUrl}  user ${platform.jiraSimulator.email}, API token: \`npx ctem token --simulator\``]
      : platform.jiraUrl
        ? [`  Jira             ${platform.jiraUrl}`]
        : []),
    `  Golden tickets   ${platform.itsm === 'jira' ? 'Jira' : 'ServiceNow'} (CTEM_ITSM)`,
    `  PostgreSQL       ${platform.databaseUrl.replace(/:[^:@/]+@/, ':***@')}`,
    `  Data             ${config.dataDir}`,
    '',
    ...(platform.apiUrl ? ['Try: npx ctem ingest report.json --owner alex.romero'] : []),
    'Ctrl-C stops everything; the next start resumes where this one left off.',
  ];
  return untilStopped(lines, () => platform.stop(), log);
}

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  const roles = ROLES[command];
  if (roles) return serve(command, roles, rest);
  if (command === 'cluster') {
    const { clusterCommand } = await import('./commands/cluster.js');
    return clusterCommand(loadConfig(), rest);
  }
  if (command === 'intel') {
    const { intelCommand } = await import('./commands/intel.js');
    return intelCommand(loadConfig(), rest);
  }
  if (command === 'backtest') {
    const { backtestCommand } = await import('./commands/backtest.js');
    return backtestCommand(loadConfig(), rest);
  }
  if (command === 'validate') {
    const { validateCommand } = await import('./commands/validate.js');
    return validateCommand(loadConfig(), rest);
  }
  if (command === 'gate') {
    const { gateCommand } = await import('./commands/gate.js');
    return gateCommand(rest);
  }
  if (command === 'token') {
    const { generatedSecret } = await import('./commands/platform-api.js');
    const config = loadConfig();
    const simulator = rest.includes('--simulator');
    // `ctem cluster` keeps its state, secrets included, in a directory of its own.
    const where = rest.includes('--cluster') ? { ...config, dataDir: join(config.dataDir, 'cluster') } : config;
    const unknown = rest.filter((a) => a !== '--simulator' && a !== '--cluster');
    if (unknown.length) throw new Error(`token: unknown option ${unknown[0]} (options: --simulator, --cluster)`);
    const value = simulator ? generatedSecret(where, 'simulatorPassword') : (config.apiToken ?? generatedSecret(where, 'apiToken'));
    if (!value) throw new Error(`token: nothing generated in ${where.dataDir} yet (start the platform once with \`npm start\`)`);
    console.log(value);
    return 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    console.log(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  if (command === 'exposures' || command === 'findings') {
    const { exposuresCommand } = await import('./commands/records.js');
    return exposuresCommand(loadConfig(), rest);
  }
  if (command === 'ticket') {
    const { ticketActionCommand } = await import('./commands/records.js');
    return ticketActionCommand(loadConfig(), rest);
  }
  if (command === 'tickets') {
    if (rest[0] === 'list' || rest[0] === 'show') {
      const { ticketRecordsCommand } = await import('./commands/records.js');
      return ticketRecordsCommand(loadConfig(), rest);
    }
    const { ticketsCommand } = await import('./commands/tickets.js');
    return ticketsCommand(loadConfig(), rest);
  }
  if (command === 'audit') {
    const { auditCommand } = await import('./commands/audit.js');
    return auditCommand(loadConfig(), rest);
  }
  if (command === 'backup' || command === 'restore') {
    const { backupCommand, restoreCommand } = await import('./commands/backup.js');
    return (command === 'backup' ? backupCommand : restoreCommand)(loadConfig(), rest);
  }
  if (command === 'hypotheses') {
    const { hypothesesCommand } = await import('./commands/hypotheses.js');
    return hypothesesCommand(loadConfig(), rest);
  }
  if (command === 'identities') {
    const { identitiesCommand } = await import('./commands/identities.js');
    return identitiesCommand(loadConfig(), rest);
  }
  if (command === 'metrics') {
    const { metricsCommand } = await import('./commands/metrics.js');
    return metricsCommand(loadConfig(), rest);
  }
  if ((command === 'parse' || command === 'ingest') && (rest.includes('--help') || rest.includes('-h'))) {
    console.log(USAGE.split('\n').filter((l, i, all) => l.trimStart().startsWith(command) || (i > 0 && all[i - 1]!.trimStart().startsWith(command) && l.startsWith('      '))).join('\n'));
    return 0;
  }
  if (command === 'parse' || command === 'ingest') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        target: { type: 'string' },
        source: { type: 'string' },
        owner: { type: 'string' },
        complete: { type: 'string' },
        vantage: { type: 'string' },
        'no-wait': { type: 'boolean', default: false },
        strict: { type: 'boolean', default: false },
        progress: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
      },
    });
    if (command === 'parse') {
      const { parseCommand } = await import('./commands/parse.js');
      return parseCommand({ file: positionals[0], ...(values.format ? { format: values.format } : {}), ...(values.target ? { target: values.target } : {}), strict: values.strict });
    }
    const { ingestCommand } = await import('./commands/ingest.js');
    const { 'no-wait': noWait, progress, 'no-progress': noProgress, ...options } = values;
    const show = noProgress ? false : progress;
    return ingestCommand(loadConfig(), { file: positionals[0], ...options, wait: !noWait, ...(show === undefined ? {} : { progress: show }) });
  }
  console.log(USAGE);
  return command === 'help' || command === '--help' ? 0 : 2;
}

// A reader that stops early (`ctem parse report.json | head`) closes the pipe: that is the end of the
// output, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : `ctem: ${(err as Error).message ?? String(err)}`);
    process.exit(1);
  },
);
