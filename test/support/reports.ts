import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The Trivy fixture as the report of another image, and the ticket shape the tickets API returns:
// what the end-to-end tests that scan images and wait on golden tickets share.

const fixture = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trivy-payments-api.json'), 'utf8');

/**
 * The fixture as the scan of `image`, with a digest of its own (the same digest would, rightly,
 * make every image one asset); optionally under that artifact name and without some packages.
 */
export function imageReport(image: string, { artifactName = false, withoutPackages = [] }: { artifactName?: boolean; withoutPackages?: string[] } = {}): string {
  const r = JSON.parse(fixture);
  const digest = createHash('sha256').update(image).digest('hex');
  if (artifactName) r.ArtifactName = image;
  r.Metadata.ImageID = `sha256:${digest}`;
  r.Metadata.RepoDigests = [`${image.split(':')[0]}@sha256:${digest}`];
  if (withoutPackages.length) {
    for (const result of r.Results) {
      result.Vulnerabilities = (result.Vulnerabilities ?? []).filter((v: { PkgName: string }) => !withoutPackages.includes(v.PkgName));
    }
  }
  return JSON.stringify(r);
}

/** A golden ticket as `GET /api/v1/tickets` lists it. */
export interface TicketRow {
  key: string;
  workflowId: string;
  externalNumber: string | null;
  externalSysId: string | null;
  state: string;
  owner: string | null;
  tier: string;
  dueAt: string;
  ackDueAt: string;
  createdAt?: string;
  escalationLevel: number;
  escalationPeak: number;
  escalationCount: number;
  lastEscalatedAt: string | null;
  findingCount: number;
  asset: { key: string; name: string };
  fix: { component: string; fixedVersion: string };
  action: string;
  orphanReason: string | null;
}
