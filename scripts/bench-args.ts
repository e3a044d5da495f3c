import { parseDuration } from '../config/duration.js';

// Command-line options of the benchmarks: `--some-option` sets `someOption`. Counts are positive
// integers (`1_000_000` reads), durations read like `10m`, flags take no value.

export type ArgKind = 'count' | 'duration' | 'flag' | 'text';

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export function parseBenchArgs<T extends object>(argv: string[], kinds: { [K in keyof T]-?: ArgKind }, defaults: T): T {
  const options = { ...defaults } as Record<string, unknown>;
  const byFlag = new Map(Object.entries(kinds as Record<string, ArgKind>).map(([key, kind]) => [flagOf(key), { key, kind }]));
  const usage = () => [...byFlag].map(([flag, { kind }]) => (kind === 'flag' ? flag : `${flag} ${kind === 'count' ? 'N' : kind === 'duration' ? '10m' : 'VALUE'}`)).join(' ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const option = byFlag.get(arg);
    if (!option) throw new Error(`unknown option ${arg} (options: ${usage()})`);
    if (option.kind === 'flag') {
      options[option.key] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (option.kind === 'count') {
      const n = Number(value.replace(/_/g, ''));
      if (!Number.isInteger(n) || n < 1) throw new Error(`${arg} needs a positive integer`);
      options[option.key] = n;
    } else if (option.kind === 'duration') {
      options[option.key] = parseDuration(value);
    } else {
      options[option.key] = value;
    }
  }
  return options as T;
}
