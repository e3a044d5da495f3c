import { describe, expect, it } from 'vitest';
import { escalationNotice, escalationWorkNote, incidentText, urgencyOf } from '../../mobilization/ticket-text.js';
import type { TicketDetail } from '../../mobilization/plan.js';

const ticket = (over: Partial<TicketDetail> = {}): TicketDetail => ({
  key: 'openssl@3.0.13~web-01~1f2e3d4c',
  owner: 'alex.romero',
  tier: 'act',
  action: 'package',
  assetName: 'web-01',
  assetKey: 'host:web-01',
  component: 'openssl',
  fixedVersion: '3.0.13',
  dueAt: new Date('2026-12-10T00:00:00Z'),
  externalSysId: 'abc',
  externalNumber: 'INC0010001',
  orphanReason: null,
  assets: ['web-01'],
  lines: [{ package: 'openssl', packages: ['openssl'], installed: '3.0.11', target: '3.0.13', issueIds: ['CVE-2023-5678', 'CVE-2024-0727'] }],
  findings: [
    { issueId: 'CVE-2024-0727', component: 'openssl', version: '3.0.11', severity: 'medium', cvss: 5.5, tier: 'attend', kev: false, epss: 0.01, location: '', cwes: [], assetKey: 'host:web-01' },
    { issueId: 'CVE-2023-5678', component: 'openssl', version: '3.0.11', severity: 'high', cvss: null, tier: 'act', kev: true, epss: null, location: '', cwes: [], assetKey: 'host:web-01' },
  ],
  ...over,
});

describe('the incident text', () => {
  it('names the fix, the asset, the count and each finding with the evidence that ranked it', () => {
    const text = incidentText(ticket());
    expect(text.short_description).toBe('Upgrade openssl to 3.0.13 on web-01 (2 vulnerabilities, act)');
    expect(text.description).toContain('Asset: web-01 (host:web-01).');
    expect(text.description).toContain('- CVE-2024-0727 (medium, CVSS 5.5, EPSS 0.01; tier attend)');
    expect(text.description).toContain('- CVE-2023-5678 (high, in CISA KEV; tier act)');
  });

  it('lists the other ids a vulnerability is known by beside it', () => {
    const [first, second] = ticket().findings;
    const text = incidentText(ticket({ findings: [{ ...first!, aliases: ['DSA-5621-1', 'GHSA-xxxx-yyyy-zzzz'] }, { ...second!, aliases: [] }] }));
    expect(text.description).toContain('- CVE-2024-0727 (also DSA-5621-1, GHSA-xxxx-yyyy-zzzz) (medium, CVSS 5.5, EPSS 0.01; tier attend)');
    expect(text.description).toContain('- CVE-2023-5678 (high, in CISA KEV; tier act)');
  });

  it('speaks of hosts when one patch covers several, and of one vulnerability in the singular', () => {
    const text = incidentText(ticket({ assets: ['web-01', 'web-02', 'web-03'], findings: ticket().findings.slice(0, 1) }));
    expect(text.short_description).toBe('Upgrade openssl to 3.0.13 on 3 hosts (1 vulnerability, act)');
    expect(text.description).toContain('Assets: web-01, web-02, web-03.');
  });

  it('maps tiers to ITSM urgency, high for act', () => {
    expect([urgencyOf('act'), urgencyOf('attend'), urgencyOf('track')]).toEqual(['1', '2', '3']);
  });
});

describe('the escalation', () => {
  const owner = { userName: 'alex.romero', name: 'Alex Romero' };
  const manager = { userName: 'jonas.weber', name: 'Jonas Weber', email: 'jonas.weber@example.com' };
  const step = { ticketKey: ticket().key, phase: 'acknowledgement' as const, level: 1, slaDeadline: '2026-12-07T00:00:00.000Z' };

  it('notes who was escalated to and why', () => {
    expect(escalationWorkNote(step, manager, 'alex.romero')).toBe(
      'Escalation level 1: acknowledgement SLA breached (deadline 2026-12-07T00:00:00.000Z). Escalated to Jonas Weber (jonas.weber), manager level 1 above the owner alex.romero.',
    );
  });

  it('gives each (ticket, phase, level, re-opening) one notice id, and counts the days overdue', () => {
    const now = Date.parse('2026-12-08T12:00:00Z');
    const first = escalationNotice(step, ticket(), { owner, manager }, 'https://itsm/INC0010001', now);
    expect(first.id).toBe(`escalation:${step.ticketKey}:acknowledgement:1`);
    expect(first.daysOverdue).toBe(1.5);
    expect(first.ask).toBe('Make sure Alex Romero acknowledges INC0010001: acknowledgement was due 2026-12-07T00:00:00.000Z.');
    const reopened = escalationNotice({ ...step, phase: 'resolution', cycle: 2 }, ticket(), { owner, manager }, 'https://itsm/INC0010001', now);
    expect(reopened.id).toBe(`escalation:${step.ticketKey}:resolution:1:reopened-2`);
    expect(reopened.ask).toMatch(/^Make sure Alex Romero resolves INC0010001/);
    expect(escalationNotice(step, ticket(), { owner, manager }, 'u', Date.parse('2026-12-06T00:00:00Z')).daysOverdue).toBe(0);
  });
});
