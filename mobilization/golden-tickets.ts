import { createHash } from 'node:crypto';

// A golden ticket is one remediation action: upgrading one package to one fixed version on one
// asset. Its key is readable in the Temporal UI and stable across scans.

export interface FixAction {
  assetKey: string;
  assetName: string;
  component: string;
  fixedVersion: string;
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);

/** e.g. `openssl@3.0.13-1~deb12u1 on my-app-latest #1f2e3d4c` (the hash keeps similar names apart). */
export function fixKey(action: FixAction): string {
  const hash = createHash('sha256')
    .update([action.assetKey, action.component, action.fixedVersion].join('\x1f'))
    .digest('hex')
    .slice(0, 8);
  return `${slug(action.component)}@${slug(action.fixedVersion)}~${slug(action.assetName)}~${hash}`;
}

export const remediationWorkflowId = (key: string) => `remediation:${key}`;
