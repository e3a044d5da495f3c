// Microsoft Defender for Endpoint vulnerabilities: the portal's CSV export and the API's JSON.
export { defenderEndpointCsv } from './csv.js';
export { defenderEndpointJson } from './json.js';
