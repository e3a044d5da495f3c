// Microsoft Defender for Endpoint vulnerabilities (the portal's CSV export and the API's JSON) and
// Microsoft Defender for Cloud's vulnerability sub-assessments.
export { defenderEndpointCsv } from './csv.js';
export { defenderEndpointJson } from './json.js';
export { defenderCloudJson } from './cloud.js';
