// Version arithmetic for remediation targets. Scanners write fixed versions in every ecosystem's
// syntax (semver, Debian `1:2.3-1~deb12u1`, Alpine `2.9.1-r3`, Maven `2.17.1`) and sometimes as a
// list, one per supported branch (`2.3.2, 2.2.5`; Nessus `5.3.12 / 5.4.2`). A ticket asks for one
// version per installed package: the one that fits the installed branch. The comparison is the
// common core of dpkg's and semver's orderings (numbers as numbers, `~` before anything); it is not
// any one ecosystem's full rule, which is enough to order the candidates of one advisory.

type Token = { num: number } | { text: string };

function tokens(version: string): Token[] {
  const out: Token[] = [];
  for (const m of version.trim().matchAll(/(\d+)|(~)|([A-Za-z]+)/g)) {
    if (m[1] !== undefined) out.push({ num: Number(m[1]) });
    else if (m[2]) out.push({ text: '~' });
    else out.push({ text: m[3]!.toLowerCase() });
  }
  return out;
}

const rank = (t: Token | undefined): number => (t === undefined ? 1 : 'num' in t ? 3 : t.text === '~' ? 0 : 2);

/** Negative when a < b, positive when a > b, 0 when equal (by this ordering). */
export function compareVersions(a: string, b: string): number {
  // An epoch (`1:`) outranks everything after it.
  const epoch = (v: string) => (/^\d+:/.test(v) ? Number(v.slice(0, v.indexOf(':'))) : 0);
  const strip = (v: string) => v.replace(/^\d+:/, '');
  if (epoch(a) !== epoch(b)) return epoch(a) - epoch(b);
  const ta = tokens(strip(a));
  const tb = tokens(strip(b));
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    // `~` sorts before the end of the version (1.0~rc1 < 1.0); text after a number is a pre-release
    // in semver (1.0.0-alpha < 1.0.0) but a suffix elsewhere; ending first counts as smaller here.
    if (rank(x) !== rank(y)) return rank(x) - rank(y);
    if (x && y && 'num' in x && 'num' in y && x.num !== y.num) return x.num - y.num;
    if (x && y && 'text' in x && 'text' in y && x.text !== y.text) return x.text < y.text ? -1 : 1;
  }
  return 0;
}

/** The versions a fixed-version field lists: `2.3.2, 2.2.5`, `5.3.12 / 5.4.2`, `>= 1.2.3`. */
export function fixedVersionCandidates(field: string): string[] {
  return field
    .split(/\s*(?:,|;|\|\|?|\s\/\s|\s+or\s+)\s*/)
    .map((v) => v.replace(/^(?:>=?|=)\s*/, '').trim())
    .filter((v) => /\d/.test(v));
}

const numbers = (v: string) => (v.replace(/^\d+:/, '').match(/\d+/g) ?? []).map(Number);

function sharedPrefix(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * The version to upgrade `installed` to, from the scanner's fixed-version field: among the listed
 * versions above the installed one, the one on the installed branch (the longest shared leading
 * numbers), the lowest such; when none is above it, the highest listed. Undefined when the field
 * lists no version.
 */
export function targetVersion(installed: string, fixedField: string): string | undefined {
  const candidates = fixedVersionCandidates(fixedField);
  if (candidates.length === 0) return undefined;
  if (candidates.length === 1) return candidates[0];
  const above = candidates.filter((c) => !installed || compareVersions(c, installed) > 0);
  if (above.length === 0) return candidates.reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
  const mine = numbers(installed);
  const fit = (c: string) => sharedPrefix(numbers(c), mine);
  return above.reduce((best, c) => {
    const d = fit(c) - fit(best);
    return d > 0 || (d === 0 && compareVersions(c, best) < 0) ? c : best;
  });
}

/** The highest of several versions (several findings on one package ask for different fixes). */
export function highestVersion(versions: string[]): string | undefined {
  return versions.length ? versions.reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b)) : undefined;
}
