// MITRE ATT&CK techniques of an attack-path step, derived from the edge kind and the exposure used
// (finding kind, CWE, CVSS attack vector). Table-driven: one row per rule, first match wins. A step
// no row matches gets no technique: an unknown is shown as unknown, never guessed.

export type EdgeKind = 'internet' | 'network' | 'hosted' | 'part_of';

export interface Technique {
  id: string;
  name: string;
}

export const TECHNIQUES = {
  T1190: { id: 'T1190', name: 'Exploit Public-Facing Application' },
  T1210: { id: 'T1210', name: 'Exploitation of Remote Services' },
  T1552: { id: 'T1552', name: 'Unsecured Credentials' },
  T1078: { id: 'T1078', name: 'Valid Accounts' },
  T1068: { id: 'T1068', name: 'Exploitation for Privilege Escalation' },
  TA0040: { id: 'TA0040', name: 'Impact' },
} as const satisfies Record<string, Technique>;

/** CWEs of privilege management: exploiting one from a foothold on the host is privilege escalation. */
export const PRIVILEGE_ESCALATION_CWES = new Set(['CWE-269', 'CWE-250', 'CWE-264', 'CWE-266', 'CWE-268', 'CWE-274']);

export interface StepExposure {
  kind: string;
  cwes: readonly string[] | null;
  cvssVector: string | null;
}

const localVector = (vector: string | null) => vector !== null && /(^|\/)AV:L(\/|$)/.test(vector);
const privilegeCwe = (cwes: readonly string[] | null) => (cwes ?? []).some((c) => PRIVILEGE_ESCALATION_CWES.has(c.toUpperCase()));

const RULES: Array<{ when: (edge: EdgeKind, exposure: StepExposure | null) => boolean; techniques: Technique[] }> = [
  { when: (edge) => edge === 'part_of', techniques: [TECHNIQUES.TA0040] },
  { when: (_, x) => x?.kind === 'secret', techniques: [TECHNIQUES.T1552, TECHNIQUES.T1078] },
  { when: (edge, x) => edge === 'hosted' && x !== null && (localVector(x.cvssVector) || privilegeCwe(x.cwes)), techniques: [TECHNIQUES.T1068] },
  { when: (edge) => edge === 'internet', techniques: [TECHNIQUES.T1190] },
  { when: (edge) => edge === 'network', techniques: [TECHNIQUES.T1210] },
];

/** The techniques of one step; empty when no rule applies (e.g. a hosted step with a network-vector CVE). */
export function techniquesOf(edge: EdgeKind, exposure: StepExposure | null): Technique[] {
  return RULES.find((r) => r.when(edge, exposure))?.techniques ?? [];
}

const BY_ID: Map<string, Technique> = new Map(Object.values(TECHNIQUES).map((t) => [t.id, t]));

/** The technique of a stored id (the store keeps ids only). */
export function techniqueById(id: string): Technique {
  const technique = BY_ID.get(id);
  if (!technique) throw new Error(`attack graph: technique ${id} is not in validation/graph/techniques.ts`);
  return technique;
}
