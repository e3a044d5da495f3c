import type { ControlInput } from '../prioritization/controls.js';

// When no fix is known, a ticket still asks for something an owner can do: compensating controls
// that fit the finding. Each is written as the compensating control the platform records
// (PUT /api/v1/controls/{name}), so recording it once applied re-scores the findings it mitigates.

export interface MitigationTarget {
  assetKey: string;
  component: string;
  issueIds: string[];
  /** Where the finding was seen: `443/tcp` for a network service, a path for a file. */
  locations: string[];
  cwes: string[];
  assetKind: string;
}

export interface Mitigation {
  /** What to do, in one sentence. */
  advice: string;
  /** The control to record once it is in place; absent when the step removes the finding itself. */
  control?: ControlInput;
}

// Weakness classes a web application firewall rule can block in front of the service.
const WEB_CWES = new Set(['CWE-20', 'CWE-22', 'CWE-77', 'CWE-78', 'CWE-79', 'CWE-89', 'CWE-94', 'CWE-502', 'CWE-611', 'CWE-917', 'CWE-918', 'CWE-352']);

const PORT = /^(\d+)\/(tcp|udp)$/;

const controlName = (kind: string, t: MitigationTarget) => `${kind}: ${t.component} on ${t.assetKey}`.slice(0, 200);

/** The compensating controls that fit a finding with no fix, most specific first. */
export function mitigationsFor(t: MitigationTarget): Mitigation[] {
  const ports = [...new Set(t.locations.map((l) => PORT.exec(l.split(/\s/)[0] ?? '')?.[0]).filter((p): p is string => !!p))];
  const out: Mitigation[] = [];
  if (ports.length) {
    out.push({
      advice: `Restrict ${ports.join(', ')} to the networks that need it (firewall or security group), or close it if unused.`,
      control: {
        name: controlName('segmentation', t),
        kind: 'segmentation',
        mitigates: { ports },
        appliesTo: { assetKeys: [t.assetKey] },
        effect: 'not_exposed',
        description: `Network access to ${ports.join(', ')} restricted.`,
      },
    });
  }
  if (t.cwes.some((c) => WEB_CWES.has(c)) || ports.some((p) => ['80/tcp', '443/tcp', '8080/tcp', '8443/tcp'].includes(p))) {
    out.push({
      advice: `Add a web application firewall rule that blocks exploitation of ${t.issueIds.join(', ')} in front of the service.`,
      control: {
        name: controlName('waf', t),
        kind: 'waf',
        mitigates: { issueIds: t.issueIds },
        appliesTo: { assetKeys: [t.assetKey] },
        effect: 'not_exposed',
        description: `WAF rule for ${t.issueIds.join(', ')}.`,
      },
    });
  }
  out.push({
    advice: `Disable the affected feature of ${t.component} (configuration or vendor workaround), if the service can run without it.`,
    control: {
      name: controlName('feature disabled', t),
      kind: 'feature_disabled',
      mitigates: { issueIds: t.issueIds },
      appliesTo: { assetKeys: [t.assetKey] },
      effect: 'not_exploitable',
      description: `Vulnerable feature of ${t.component} disabled.`,
    },
  });
  if (t.assetKind !== 'host') {
    out.push({ advice: `Remove ${t.component} if nothing uses it: the next scan closes the findings.` });
  }
  return out;
}
