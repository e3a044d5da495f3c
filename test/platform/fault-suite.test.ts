import { describe, expect, inject, it } from 'vitest';
import { runScenario, type FaultResult } from '../../scripts/fault-suite.js';

// The fault suite at a size CI affords (npm run test:faults runs it larger, and kills the main
// process too): scans in flight when PostgreSQL or the Temporal dev server is killed, or while
// ServiceNow answers 503, all complete once with the counts a run without faults gives, and every
// golden ticket is one incident.
const size = { findings: 2000, reports: 3, workflowBundle: inject('workflowBundle') };

const clean = (r: FaultResult) => ({ lost: r.lost, duplicated: r.duplicated, wrongCounts: r.wrongCounts });
const none = { lost: { scans: 0, findings: 0, tickets: 0 }, duplicated: { findings: 0, incidents: 0 }, wrongCounts: 0 };

describe('faults in the middle of an ingest', { timeout: 600_000 }, () => {
  it('loses and duplicates nothing when PostgreSQL, the dev server or ServiceNow go down', async () => {
    const baseline = await runScenario('none', { ...size, strikeAfterMs: 0 });
    expect(clean(baseline.result)).toEqual(none);
    expect(baseline.observed.tickets.length).toBe(size.reports);
    const strikeAfterMs = Math.max(300, baseline.result.recoverSeconds * 250);
    for (const fault of ['postgres', 'temporal', 'itsm'] as const) {
      const { result, observed } = await runScenario(fault, { ...size, strikeAfterMs, baseline: baseline.observed });
      expect(clean(result), `${fault}: ${result.notes.join('; ')}`).toEqual(none);
      // The fault struck while scans were still running, or it proves nothing.
      if (fault !== 'itsm') expect(result.inFlight, fault).toBeGreaterThan(0);
      expect(observed.tickets.length, fault).toBe(baseline.observed.tickets.length);
    }
  });
});
