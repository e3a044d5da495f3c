// Fixed versions that scanners write only as prose: Trivy's SARIF message ("Fixed Version: 39.0.1"),
// Nessus solutions ("Upgrade to PHP version 5.3.29 or later"), Qualys and Dependency-Track
// recommendations ("Update to version 2.6.0 or later."). Conservative on purpose: a version is taken
// only where the text says it is the fixed one (a label, or an upgrade "to version X" / "to X or
// later"), and only a dotted version counts, so a CVE id, a date or a KB number is never read as one.

/** A dotted version, with an optional letter suffix and release (`1.0.1g`, `4.2.7p26`, `2.36-9+deb12u8`). */
const VERSION = String.raw`\d+(?:\.\d+)+(?:[a-z]+\d*)?(?:[-+~][0-9a-z]+(?:[.+~][0-9a-z]+)*)?(?![\w.]*\d)`;
/** Versions listed together: "2.3.2, 2.2.5", "5.3.12 / 5.4.2", "4.14 and 5.0.5". */
const LIST = String.raw`${VERSION}(?:\s*(?:,\s*(?:and\s+)?|/|\band\b)\s*${VERSION})*`;
/** Up to four words, none ending a sentence, around "to": a product name ("PHP", "com.x:lib"). */
const WORD = String.raw`[^\s.,;:]+(?:[.:][^\s.,;:]+)*`;
const WORDS = String.raw`(?:${WORD}\s+){0,4}?`;
const VERB = String.raw`\b(?:upgrad(?:e|ing)|updat(?:e|ing))`;
const TRAILER = String.raw`or\s+(?:later|higher|newer|above|greater|latest)`;

/** "Fixed Version: 39.0.1", "Fixed version : 7.4.33" (one line; an empty value is no version). */
const LABELLED = /\bfixed[ _]versions?[ \t]*:[ \t]*([^\r\n]*)/gi;
/** "Upgrade to PHP version 5.3.29", "update to Version 1.0.1g", "Upgrade x:y to versions 2.9.5, 2.10.1". */
const TO_VERSION = new RegExp(String.raw`${VERB}(?:\s+${WORD}){0,4}?\s+to\s+${WORDS}versions?\s+(${LIST})`, 'gi');
/** "Upgrade to OpenSSL 1.0.2h or later": without the word "version", only with an "or later". */
const OR_LATER = new RegExp(String.raw`${VERB}(?:\s+${WORD}){0,4}?\s+to\s+${WORDS}(${LIST})\s+${TRAILER}`, 'gi');

const VERSION_IN = new RegExp(VERSION, 'gi');
const HAS_DIGIT = /\d/;

/** HTML (Qualys writes its solutions in it) as plain text, on one line per paragraph. */
function plain(text: string): string {
  return text
    .replace(/<br\s*\/?>|<\/?p\s*>/gi, '\n')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/**
 * The fixed version a text states, or undefined. A labelled value is kept as the scanner wrote it
 * ("2.3.2, 2.2.5", "5.3.2 / 5.2.13"); versions recovered from prose are listed as "a, b" in the
 * order they appear, once each. Mobilization picks the one that fits the installed version.
 */
export function fixedVersionFromText(text: string | undefined): string | undefined {
  if (!text) return undefined;
  for (const match of text.matchAll(LABELLED)) {
    const value = match[1]!.trim();
    if (value !== '' && value.length <= 200 && HAS_DIGIT.test(value) && new RegExp(VERSION, 'i').test(value)) return value;
  }
  const prose = plain(text);
  const found: string[] = [];
  for (const pattern of [TO_VERSION, OR_LATER]) {
    for (const match of prose.matchAll(pattern)) {
      for (const version of match[1]!.match(VERSION_IN) ?? []) if (!found.includes(version)) found.push(version);
    }
    if (found.length > 0) break;
  }
  return found.length > 0 ? found.join(', ') : undefined;
}
