import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { BacktestError, laterKevCves, type BacktestResult, type BacktestUniverse } from '../../prioritization/backtest.js';
import { platformApi } from './platform-api.js';

// `ctem backtest --later-kev FILE`: would the policy have flagged, at t0 (the feeds in the platform),
// what attackers went on to exploit? Through the running platform's API, read-only.

const USAGE = `usage: ctem backtest --later-kev FILE [--universe estate|cves|records] [--policy VERSION ...]
                     [--epss VERSION] [--kev VERSION] [--cve VERSION] [--json]
  FILE: a later CISA KEV catalog (JSON or CSV) or any CSV with a CVE column`;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(7);

export function formatBacktest(r: BacktestResult): string {
  const unit = r.universe === 'estate' ? 'findings' : 'CVEs';
  const head = [
    `t0: FIRST EPSS ${r.feeds.epss}, CISA KEV ${r.feeds.kev}, CVE records ${r.feeds.cve ?? 'none'}`,
    `population: ${r.population} ${unit} not in KEV at t0; ${r.positives} of them in the later KEV; ${r.withCvss} with a CVSS score`,
    '',
    `${'rule'.padEnd(44)}${'flagged'.padStart(9)} ${'effort'.padStart(7)} ${'caught'.padStart(7)} ${'coverage'.padStart(8)} ${'efficiency'.padStart(10)}`,
  ];
  const rows = r.rows.map((x) => `${x.name.padEnd(44)}${String(x.flagged).padStart(9)} ${pct(x.effort)} ${String(x.caught).padStart(7)} ${pct(x.coverage).padStart(8)} ${pct(x.efficiency).padStart(10)}`);
  return [...head, ...rows].join('\n');
}

export async function backtestCommand(config: Config, argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'later-kev': { type: 'string' },
        universe: { type: 'string', default: 'estate' },
        policy: { type: 'string', multiple: true },
        epss: { type: 'string' },
        kev: { type: 'string' },
        cve: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const file = values['later-kev'];
  if (!file || !['estate', 'cves', 'records'].includes(values.universe!)) {
    console.error(USAGE);
    return 2;
  }
  let cves: string[];
  try {
    cves = laterKevCves(readFileSync(file, 'utf8'), file);
  } catch (err) {
    console.error(err instanceof BacktestError ? err.message : `${file}: ${(err as Error).message}`);
    return 2;
  }
  const { url, token } = platformApi(config);
  const body = {
    universe: values.universe as BacktestUniverse,
    laterKev: { cves },
    ...(values.policy ? { policies: values.policy } : {}),
    ...(values.epss ? { epss: values.epss } : {}),
    ...(values.kev ? { kev: values.kev } : {}),
    ...(values.cve ? { cve: values.cve === 'none' ? null : values.cve } : {}),
  };
  const res = await fetch(`${url}/api/v1/backtests`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) {
    console.error(`backtest failed: HTTP ${res.status} ${await res.text()}`);
    return 1;
  }
  const result = (await res.json()) as BacktestResult;
  console.log(values.json ? JSON.stringify(result, null, 2) : formatBacktest(result));
  return 0;
}
