import { parseDuration } from './duration.js';

// A request budget written as `<requests>/<window>`: "600/min", "50/10s", "10000/1h". The window is
// a unit (s, sec, min, h, hour, d, day) or a duration (config/duration.ts); "off" or "0" disables it.

export interface RateLimit {
  limit: number;
  windowMs: number;
}

const UNIT_WINDOWS: Record<string, string> = { s: '1s', sec: '1s', second: '1s', m: '1m', min: '1m', minute: '1m', h: '1h', hour: '1h', d: '1d', day: '1d' };
const EXAMPLES = 'write requests per window, e.g. 600/min, 50/10s, 10000/1h, or off';

/** The budget, or undefined when disabled. Throws a sentence naming what is wrong. */
export function parseRateLimit(text: string): RateLimit | undefined {
  const trimmed = text.trim();
  if (/^(off|0)$/i.test(trimmed)) return undefined;
  const match = /^(\d+)\s*\/\s*(\S+)$/.exec(trimmed);
  if (!match) throw new Error(`"${text}" is not a rate: ${EXAMPLES}`);
  const limit = Number(match[1]);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`"${text}": the number of requests must be a whole number of at least 1 (or write off)`);
  const unit = match[2]!.toLowerCase();
  let windowMs: number;
  try {
    windowMs = parseDuration(UNIT_WINDOWS[unit] ?? unit);
  } catch {
    throw new Error(`"${text}": "${match[2]}" is not a window (s, min, h, day or a duration such as 10s, 15m)`);
  }
  if (windowMs < 1000) throw new Error(`"${text}": the window must be at least one second`);
  return { limit, windowMs };
}
