// CVSS v3.0/v3.1 base score from a vector, per the FIRST specification's formulas: some formats
// (OSV) carry only the vector, and a score is what prioritization compares.

const AV: Record<string, number> = { N: 0.85, A: 0.62, L: 0.55, P: 0.2 };
const AC: Record<string, number> = { L: 0.77, H: 0.44 };
const UI: Record<string, number> = { N: 0.85, R: 0.62 };
const CIA: Record<string, number> = { H: 0.56, L: 0.22, N: 0 };

/** The specification's round-up to one decimal, done in integers to dodge float noise. */
function roundUp(value: number): number {
  const scaled = Math.round(value * 100_000);
  return scaled % 10_000 === 0 ? scaled / 100_000 : (Math.floor(scaled / 10_000) + 1) / 10;
}

export function cvss3BaseScore(vector: string): number | undefined {
  const parts = vector.trim().split('/');
  if (!/^CVSS:3\.[01]$/.test(parts[0] ?? '')) return undefined;
  const m = new Map(parts.slice(1).map((p) => p.split(':') as [string, string]));
  const scope = m.get('S');
  const av = AV[m.get('AV') ?? ''];
  const ac = AC[m.get('AC') ?? ''];
  const ui = UI[m.get('UI') ?? ''];
  const c = CIA[m.get('C') ?? ''];
  const i = CIA[m.get('I') ?? ''];
  const a = CIA[m.get('A') ?? ''];
  const prRaw = m.get('PR');
  const changed = scope === 'C';
  const pr = prRaw === 'N' ? 0.85 : prRaw === 'L' ? (changed ? 0.68 : 0.62) : prRaw === 'H' ? (changed ? 0.5 : 0.27) : undefined;
  if ((scope !== 'U' && scope !== 'C') || av === undefined || ac === undefined || ui === undefined || pr === undefined
    || c === undefined || i === undefined || a === undefined) return undefined;
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 : 6.42 * iss;
  const exploitability = 8.22 * av * ac * pr * ui;
  if (impact <= 0) return 0;
  return roundUp(Math.min(changed ? 1.08 * (impact + exploitability) : impact + exploitability, 10));
}

/**
 * The vector when it is a well-formed CVSS v3.x base vector, trimmed; anything else is dropped.
 * Some formats (Tenable CSV, CycloneDX) may omit the `CVSS:3.x/` prefix; `version` supplies it.
 */
// Reports repeat a few thousand distinct vectors over millions of findings: check each once. One
// map per version, keyed by the raw text, so a lookup builds no key string.
const checked = { '3.0': new Map<string, string | undefined>(), '3.1': new Map<string, string | undefined>() };

export function cvss3Vector(raw: unknown, version: '3.0' | '3.1' = '3.0'): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const cache = checked[version];
  const hit = cache.get(raw);
  if (hit !== undefined || cache.has(raw)) return hit;
  const trimmed = raw.trim();
  const vector = trimmed.startsWith('CVSS:') ? trimmed : `CVSS:${version}/${trimmed}`;
  const valid = trimmed !== '' && cvss3BaseScore(vector) !== undefined ? vector : undefined;
  if (cache.size >= 10_000) cache.clear(); // bounded: hostile input cannot grow it
  cache.set(raw, valid);
  return valid;
}

const BASE_METRICS = ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'];

/**
 * The base part of a valid v3.x vector: a VEX's environmental rating writes its temporal and
 * environmental metrics (`CR:X/.../MC:N`) after the base ones, which say nothing about the CVE.
 */
export function cvss3BaseVector(vector: string): string {
  const [prefix, ...parts] = vector.split('/');
  const metrics = new Map(parts.map((p) => p.split(':') as [string, string]));
  return [prefix, ...BASE_METRICS.map((m) => `${m}:${metrics.get(m)}`)].join('/');
}
