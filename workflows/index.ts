// Every workflow the worker runs. This file is bundled into the workflow sandbox: it imports only
// workflow code, never database or SDK clients.
export { campaignWorkflow } from './campaign.js';
export { discoveryWorkflow } from './discovery.js';
export { escalationDigestWorkflow } from './escalation-digest.js';
export { intelFeedWorkflow } from './intel-feed.js';
export { orphanReportWorkflow } from './orphan-report.js';
export { remediationWorkflow } from './remediation/workflow.js';
export { rescoreWorkflow } from './rescore.js';
export { sourceDiscoveryWorkflow } from './source-discovery.js';
export { validationWorkflow } from './validation.js';
export { huntingWorkflow } from './hunting.js';
export { metricsSnapshotWorkflow } from './metrics-snapshot.js';
