// What context sources (CMDB, cloud inventory, firewall rules, EDR, CNAPP) say about assets, in one
// shape. Scanner findings say what is wrong; context says who owns it, how much it matters, whether
// the internet reaches it and what really runs there. Parsers in context/<source>/ produce these;
// discovery/store/context.ts resolves them onto assets.

/** Ways to recognise one asset across sources; any shared value means the same asset. */
export interface AssetIdentifiers {
  fqdn?: string;
  hostname?: string;
  ips?: string[];
  /** Cloud instance / resource id, e.g. i-0abc..., or an ARN. */
  instanceId?: string;
  /** Container image reference (registry/repo:tag) and content digest (sha256:...). */
  image?: string;
  imageDigest?: string;
  /** A CMDB configuration item's sys_id. */
  cmdbId?: string;
}

export type Criticality = 'critical' | 'high' | 'medium' | 'low';

export interface ContextAsset {
  identifiers: AssetIdentifiers;
  kind: 'host' | 'container_image' | 'container' | 'business_service' | 'repository' | 'other';
  name: string;
  /** ServiceNow user_name or e-mail of the accountable owner. */
  owner?: string;
  businessService?: string;
  criticality?: Criticality;
  /** Yearly revenue the asset (usually a business service) carries, in the CMDB's currency. */
  annualRevenue?: number;
  environment?: string;
  publicIps?: string[];
  securityGroups?: string[];
  tags?: Record<string, string>;
  /**
   * Edges to other assets: an image runs as a container on a host, a host is part of a service, an
   * image is built from a base image (one base per image).
   */
  relations?: Array<{ relation: 'runs_on' | 'instance_of' | 'part_of' | 'built_from'; target: AssetIdentifiers; targetKind: ContextAsset['kind']; targetName: string }>;
}

/** One inbound rule of a security group or firewall: who may reach which ports. */
export interface ExposureRule {
  securityGroup: string;
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  fromPort: number;
  toPort: number;
  /** Source CIDRs; 0.0.0.0/0 or ::/0 means the internet. */
  sources: string[];
}

/** EDR evidence that a package or process really runs on a host. */
export interface RuntimeEvidence {
  host: AssetIdentifiers;
  hostName: string;
  package?: string;
  version?: string;
  process?: string;
  observedAt: string;
}

/**
 * One flow a declared network-segment policy allows: from a segment (or the internet) to a
 * segment, on ports (`443/tcp`, `8000-8100/tcp`, `all`), with the segments' CIDRs resolved.
 */
export interface NetworkFlow {
  from: string;
  to: string;
  /** Empty when `from` is `internet`. */
  fromCidrs: string[];
  toCidrs: string[];
  ports: string[];
  description?: string;
}

/** Everything one context document yields. */
export type ContextRecord =
  | { type: 'asset'; asset: ContextAsset }
  | { type: 'exposure_rule'; rule: ExposureRule }
  /** A security group the document describes, with or without inbound rules (its rules follow). */
  | { type: 'security_group'; securityGroup: string }
  | { type: 'runtime'; evidence: RuntimeEvidence }
  | { type: 'network_flow'; flow: NetworkFlow };

export class ContextError extends Error {
  constructor(
    readonly file: string,
    readonly source: string,
    readonly where: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}: ${source}${where ? `: ${where}` : ''}: ${reason}`);
    this.name = 'ContextError';
  }
}
