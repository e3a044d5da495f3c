import { describe, expect, it } from 'vitest';
import { computeAttackPaths, type Exposure, type GraphEdge, type GraphInput } from '../../validation/graph/paths.js';
import { techniquesOf } from '../../validation/graph/techniques.js';

// The path counting on small hand-made graphs (no database): depth, sigma, tau, paths through,
// choke points and ticket cuts, checked against paths counted by hand.

let nextFinding = 1;
const vuln = (over: Partial<Exposure> = {}): Exposure => ({
  findingId: nextFinding++,
  issueId: `CVE-2024-${nextFinding}`,
  kind: 'vulnerability',
  port: null,
  tier: 'act',
  confirmed: false,
  running: false,
  cwes: null,
  cvssVector: null,
  ...over,
});
const net = (from: number, to: number, ports: string[] | null = null): GraphEdge => ({ kind: 'network', from, to, ports, via: `security group sg-${to} from sg-${from}` });
const internet = (to: number, ports: string[] | null = null, via = 'firewall'): GraphEdge => ({ kind: 'internet', from: 0, to, ports, via });

function graph(edges: GraphEdge[], vulnerable: number[], jewels: number[], extra: Partial<GraphInput> = {}): GraphInput {
  return { edges, exposures: new Map(vulnerable.map((a) => [a, [vuln()]])), jewels: new Set(jewels), soleTicket: new Map(), ...extra };
}
const node = (r: ReturnType<typeof computeAttackPaths>, id: number) => r.nodes.find((n) => n.assetId === id);

describe('attack path counting', () => {
  it('counts the two shortest paths of a diamond and finds no choke point in its middle', () => {
    // internet -> 1 -> {2, 3} -> 4 (jewel)
    const r = computeAttackPaths(graph([internet(1), net(1, 2), net(1, 3), net(2, 4), net(3, 4)], [1, 2, 3, 4], [4]));
    expect(r.paths).toBe(2);
    expect(node(r, 4)).toMatchObject({ depth: 3, sigma: 2, tau: 1, isJewel: true, jewelHops: 0 });
    expect(node(r, 1)).toMatchObject({ depth: 1, sigma: 1, tau: 2, pathsThrough: 2, jewelHops: 2 });
    expect(node(r, 2)).toMatchObject({ sigma: 1, tau: 1, pathsThrough: 1 });
    // 1 lies on both paths; 2 and 3 on one each (50%, still above 10%); the jewel only ends paths.
    expect(r.chokePoints).toEqual([1, 2, 3]);
    expect(computeAttackPaths(graph([internet(1), net(1, 2), net(1, 3), net(2, 4), net(3, 4)], [1, 2, 3, 4], [4]), { chokeShare: 0.6 }).chokePoints).toEqual([1]);
  });

  it('counts only shortest paths: a longer detour adds none', () => {
    // 0 -> 1 -> 3 (jewel) and 0 -> 1 -> 2 -> 3: the second is longer.
    const r = computeAttackPaths(graph([internet(1), net(1, 2), net(2, 3), net(1, 3)], [1, 2, 3], [3]));
    expect(r.paths).toBe(1);
    expect(node(r, 3)).toMatchObject({ depth: 2, sigma: 1, parentId: 1 });
    expect(node(r, 2)).toMatchObject({ depth: 2, tau: 0, jewelHops: null });
  });

  it('sums multiple jewels and continues past a jewel to the next one', () => {
    // 0 -> 1 -> 2 (jewel) -> 3 (jewel); 0 -> 4 -> 3.
    const r = computeAttackPaths(graph([internet(1), internet(4), net(1, 2), net(2, 3), net(4, 3)], [1, 2, 3, 4], [2, 3]));
    // Jewel 2: one path at depth 2; jewel 3: depth 2 through 4 only (the route past jewel 2 is 3 hops).
    expect(node(r, 3)).toMatchObject({ depth: 2, sigma: 1 });
    expect(r.paths).toBe(2);
    expect(r.jewelsReached).toBe(2);
    // Make the route past jewel 2 as short as the other: 0 -> 2 directly.
    const past = computeAttackPaths(graph([internet(2), internet(4), net(2, 3), net(4, 3)], [2, 3, 4], [2, 3]));
    expect(node(past, 3)).toMatchObject({ depth: 2, sigma: 2 });
    expect(node(past, 2)).toMatchObject({ tau: 2, pathsThrough: 2, jewelHops: 0 });
    expect(past.paths).toBe(3);
    // Jewel 2 lies inside one of jewel 3's two paths: 2 of 3 paths through it, one as an intermediate.
    expect(past.chokePoints).toContain(2);
  });

  it('needs an admitted exposure: a finding on a port the edge does not open stops the path', () => {
    const exposures = new Map([
      [1, [vuln({ port: '443/tcp' })]],
      [2, [vuln({ port: '5432/tcp' })]],
    ]);
    const blocked = computeAttackPaths({ edges: [internet(1, ['443/tcp']), net(1, 2, ['22/tcp'])], exposures, jewels: new Set([2]), soleTicket: new Map() });
    expect(blocked.paths).toBe(0);
    expect(node(blocked, 2)).toBeUndefined();
    const open = computeAttackPaths({ edges: [internet(1, ['443/tcp']), net(1, 2, ['5000-6000/tcp'])], exposures, jewels: new Set([2]), soleTicket: new Map() });
    expect(open.paths).toBe(1);
    // Explicit port admitted by rule-based edges: plausible; the entry is T1190 then T1210.
    expect(node(open, 1)!.entry).toMatchObject({ confidence: 'plausible', techniques: ['T1190'] });
    expect(node(open, 2)).toMatchObject({ confidence: 'plausible', entry: { techniques: ['T1210'] } });
  });

  it('grades confidence by the weakest step and keeps the best over parents', () => {
    const exposures = new Map<number, Exposure[]>([
      [1, [vuln({ confirmed: true })]],
      [2, [vuln()]],
      [3, [vuln({ running: true })]],
      [4, [vuln({ confirmed: true })]],
    ]);
    // 0 -> 1 -> 2 -> 4 (2 is theoretical: no port, edge ports unknown); 0 -> 1 -> 3 -> 4 (3 is plausible: EDR).
    const r = computeAttackPaths({ edges: [internet(1), net(1, 2), net(1, 3), net(2, 4), net(3, 4)], exposures, jewels: new Set([4]), soleTicket: new Map() });
    expect(node(r, 1)!.confidence).toBe('confirmed');
    expect(node(r, 2)!.confidence).toBe('theoretical');
    expect(node(r, 3)!.confidence).toBe('plausible');
    expect(node(r, 4)).toMatchObject({ confidence: 'plausible', parentId: 3, entry: { confidence: 'confirmed' } });
  });

  it('moves laterally from a container like its host, and reaches containers through their host', () => {
    // Host 10 runs image 11. Internet reaches host 10 (which has no exploitable exposure); the
    // image's service is reached through it; the host's network edge to 20 leaves from the image.
    const exposures = new Map<number, Exposure[]>([
      [11, [vuln({ port: '443/tcp' })]],
      [20, [vuln({ cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' })]],
    ]);
    const edges: GraphEdge[] = [internet(10, ['443/tcp']), { kind: 'hosted', from: 10, to: 11, ports: null, via: 'runs_on' }, net(10, 20)];
    const r = computeAttackPaths({ edges, exposures, jewels: new Set([20]), soleTicket: new Map() });
    expect(node(r, 10)).toBeUndefined();
    expect(node(r, 11)).toMatchObject({ depth: 1, entry: { kind: 'internet', techniques: ['T1190'] } });
    expect(node(r, 20)).toMatchObject({ depth: 2, parentId: 11, entry: { kind: 'network' } });
    expect(r.paths).toBe(1);
  });

  it('enters a business service over part_of without an exploit, as the impact', () => {
    const edges: GraphEdge[] = [internet(1), { kind: 'part_of', from: 1, to: 9, ports: null, via: 'part_of' }];
    const r = computeAttackPaths(graph(edges, [1], [9]));
    expect(node(r, 9)).toMatchObject({ depth: 2, entry: { kind: 'part_of', exposure: null, techniques: ['TA0040'] } });
    expect(r.paths).toBe(1);
  });

  it('ranks tickets by the paths their fix cuts, recounted exactly', () => {
    // 0 -> {1, 2} -> 3 -> {4, 5} (jewels): 4 paths. Ticket A holds 3's only exposure (cuts all 4);
    // ticket B holds 1's (cuts the 2 through 1); ticket C holds 4's (cuts 2).
    const edges = [internet(1), internet(2), net(1, 3), net(2, 3), net(3, 4), net(3, 5)];
    const soleTicket = new Map([
      [3, 'A'],
      [1, 'B'],
      [4, 'C'],
    ]);
    const r = computeAttackPaths(graph(edges, [1, 2, 3, 4, 5], [4, 5], { soleTicket }));
    expect(r.paths).toBe(4);
    expect(r.tickets.map((t) => [t.ticketKey, t.pathsCut, t.exact])).toEqual([
      ['A', 4, true],
      ['B', 2, true],
      ['C', 2, true],
    ]);
    // With one exact recount, the others keep their upper bound and say so.
    const bounded = computeAttackPaths(graph(edges, [1, 2, 3, 4, 5], [4, 5], { soleTicket }), { exactTickets: 1 });
    expect(bounded.tickets[0]).toMatchObject({ ticketKey: 'A', pathsCut: 4, exact: true });
    expect(bounded.tickets.slice(1).every((t) => !t.exact)).toBe(true);
  });

  it('counts a ticket that removes two nodes on the same paths once', () => {
    // 0 -> 1 -> 2 -> 3 (jewel): one path; a ticket holding 1 and 2 cuts it once (bound would say 2).
    const r = computeAttackPaths(graph([internet(1), net(1, 2), net(2, 3)], [1, 2, 3], [3], { soleTicket: new Map([[1, 'T'], [2, 'T']]) }));
    expect(r.tickets).toEqual([{ ticketKey: 'T', pathsCut: 1, exact: true, assetIds: [1, 2] }]);
  });
});

describe('attack path determinism', () => {
  it('gives the same result whatever order the edges load in, and ignores self edges', () => {
    // Two equal routes into 4 (same confidence and tier): the tie must resolve the same way.
    const edges = [internet(1), internet(2), net(1, 3), net(2, 3), net(3, 4), net(1, 4), net(2, 4), net(4, 4), { kind: 'hosted', from: 3, to: 5, ports: null, via: 'runs_on' } as GraphEdge, net(5, 6)];
    const fixed = graph(edges, [1, 2, 3, 4, 5, 6], [4, 6]);
    const input = (list: GraphEdge[]) => ({ ...fixed, edges: list });
    const base = computeAttackPaths(input(edges));
    expect(base.paths).toBe(2 + 2);
    for (const order of [[...edges].reverse(), [...edges.slice(5), ...edges.slice(0, 5)]]) {
      expect(computeAttackPaths(input(order))).toEqual(base);
    }
  });
});

describe('ATT&CK techniques', () => {
  it('maps edge kinds, secrets and local privilege escalation, and leaves unknowns empty', () => {
    const ids = (...a: Parameters<typeof techniquesOf>) => techniquesOf(...a).map((t) => t.id);
    expect(ids('internet', { kind: 'vulnerability', cwes: null, cvssVector: null })).toEqual(['T1190']);
    expect(ids('network', { kind: 'vulnerability', cwes: null, cvssVector: null })).toEqual(['T1210']);
    expect(ids('network', { kind: 'secret', cwes: null, cvssVector: null })).toEqual(['T1552', 'T1078']);
    expect(ids('hosted', { kind: 'vulnerability', cwes: ['CWE-269'], cvssVector: null })).toEqual(['T1068']);
    expect(ids('hosted', { kind: 'vulnerability', cwes: null, cvssVector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H' })).toEqual(['T1068']);
    expect(ids('hosted', { kind: 'vulnerability', cwes: ['CWE-79'], cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' })).toEqual([]);
    expect(ids('part_of', null)).toEqual(['TA0040']);
  });
});
