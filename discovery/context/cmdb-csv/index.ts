import type { ContextSource } from '../index.js';
import { ContextError, type AssetIdentifiers, type ContextAsset, type ContextRecord } from '../model.js';
import { csvRows, sniffCsvHeader, type CsvColumns } from '../../streams/csv.js';
import {
  CRITICALITY_VALUES, cleanAsset, hostIdentifiers, isIpAddress, normalizeEnvironment,
  normalizeIp, normalizeName, parseCriticality, parseRevenue, splitList, uniq,
} from '../common.js';
import { contextRecords } from '../parse-frame.js';
import { imageDigestOf, isImageReference } from '../../connectors/common/base-image.js';

// A CMDB export as CSV, in our own documented column set (context/README.md). Columns are found by
// name, case-insensitively, in any order; only `name` is required. Streamed row by row.

const SOURCE = 'cmdb-csv';

const COLUMNS = {
  name: { names: ['name'], required: true },
  kind: { names: ['kind', 'type'] },
  cmdbId: { names: ['sys_id', 'cmdb_id'] },
  fqdn: { names: ['fqdn'] },
  hostname: { names: ['hostname', 'host_name'] },
  ip: { names: ['ip', 'ips', 'ip_address'] },
  instanceId: { names: ['instance_id'] },
  image: { names: ['image'] },
  imageDigest: { names: ['image_digest'] },
  owner: { names: ['owner', 'owned_by'] },
  businessService: { names: ['business_service'] },
  criticality: { names: ['criticality', 'business_criticality'] },
  annualRevenue: { names: ['annual_revenue', 'revenue'] },
  environment: { names: ['environment', 'used_for'] },
  partOf: { names: ['part_of'] },
  runsOn: { names: ['runs_on'] },
  builtFrom: { names: ['built_from', 'base_image'] },
  tags: { names: ['tags'] },
} satisfies CsvColumns<string>;

// Detection needs more than `name` (scanner CSVs have a Name column too): one CMDB-only column as well.
const DETECT = {
  name: { names: ['name'], required: true },
  cmdb: { names: ['kind', 'business_service', 'criticality', 'business_criticality', 'annual_revenue', 'owner', 'part_of', 'runs_on'], required: true },
} satisfies CsvColumns<string>;

const KINDS: Record<string, ContextAsset['kind']> = {
  host: 'host',
  server: 'host',
  vm: 'host',
  virtual_machine: 'host',
  instance: 'host',
  container_image: 'container_image',
  image: 'container_image',
  container: 'container',
  business_service: 'business_service',
  service: 'business_service',
  application_service: 'business_service',
  repository: 'repository',
  other: 'other',
};

export const cmdbCsv: ContextSource = {
  source: SOURCE,
  description: 'CMDB export as CSV: one configuration item per row (hosts, images, business services) with owner, criticality and relations',
  detect(head) {
    return sniffCsvHeader(head, DETECT) && !/observed_at/i.test(head.split(/\r?\n/, 20).join('\n'));
  },
  parse(file) {
    return contextRecords(file, SOURCE, (display) => rows(file, display));
  },
};

async function* rows(file: string, display: string): AsyncGenerator<ContextRecord> {
  for await (const row of csvRows(file, { format: SOURCE, columns: COLUMNS })) {
    const v = row.values;
    const fail = (column: string, reason: string): never => {
      throw new ContextError(display, SOURCE, `line ${row.line}, column ${column}`, reason);
    };
    if (Object.values(v).every((cell) => cell === '')) continue;
    if (v.name === '') fail('name', 'empty; every row needs a name');

    const kindKey = v.kind.toLowerCase().replace(/[\s-]+/g, '_');
    const kind = (kindKey === '' ? 'host' : KINDS[kindKey])
      ?? fail('kind', `unknown kind ${JSON.stringify(v.kind)}; expected one of ${[...new Set(Object.values(KINDS))].join(', ')}`);

    const criticality = parseCriticality(v.criticality)
      ?? (v.criticality === '' ? undefined : fail('criticality', `unknown criticality ${JSON.stringify(v.criticality)}; expected one of ${CRITICALITY_VALUES}`));

    const annualRevenue = parseRevenue(v.annualRevenue)
      ?? (v.annualRevenue.trim() === '' ? undefined : fail('annual_revenue', `${JSON.stringify(v.annualRevenue)} is not a yearly revenue figure (a number such as 12500000 or 12.5M)`));

    const ips = splitList(v.ip);
    const badIp = ips.find((ip) => !isIpAddress(ip));
    if (badIp !== undefined) fail('ip', `${JSON.stringify(badIp)} is not an IP address`);

    const tags: Record<string, string> = {};
    for (const pair of v.tags.split(';').map((t) => t.trim()).filter((t) => t !== '')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) fail('tags', `${JSON.stringify(pair)} is not key=value`);
      tags[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }

    const relations: NonNullable<ContextAsset['relations']> = [];
    for (const service of splitServices(v.partOf)) {
      // A business service has no technical identifier: its name is its identity.
      relations.push({ relation: 'part_of', target: {}, targetKind: 'business_service', targetName: service });
    }
    for (const host of splitList(v.runsOn)) {
      relations.push({ relation: 'runs_on', target: hostIdentifiers(host), targetKind: 'host', targetName: host });
    }
    if (v.builtFrom !== '') {
      // The base is identified as a scanned image of that reference would be, so the two meet.
      const base = v.builtFrom;
      if (kind !== 'container_image') fail('built_from', `only a container image has a base image; this row is a ${kind}`);
      if (!isImageReference(base)) fail('built_from', `${JSON.stringify(base)} is not one image reference (registry/repo:tag); an image has one base`);
      if (base === v.image) fail('built_from', `${JSON.stringify(base)} is the image itself`);
      const digest = imageDigestOf(base);
      relations.push({ relation: 'built_from', target: digest ? { image: base, imageDigest: digest } : { image: base }, targetKind: 'container_image', targetName: base });
    }

    const identifiers: AssetIdentifiers = {
      fqdn: v.fqdn ? normalizeName(v.fqdn) : undefined,
      hostname: v.hostname ? normalizeName(v.hostname) : undefined,
      ips: uniq(ips.map(normalizeIp)),
      instanceId: v.instanceId || undefined,
      image: v.image || undefined,
      imageDigest: v.imageDigest || undefined,
      cmdbId: v.cmdbId || undefined,
    };
    yield {
      type: 'asset',
      asset: cleanAsset({
        identifiers,
        kind,
        name: v.name,
        owner: v.owner || undefined,
        businessService: v.businessService || undefined,
        criticality,
        annualRevenue,
        environment: normalizeEnvironment(v.environment),
        tags,
        relations,
      }),
    };
  }
}

/** Service names may hold spaces ("Payments API"), so only `;` separates them. */
const splitServices = (s: string): string[] => s.split(';').map((x) => x.trim()).filter((x) => x !== '');
