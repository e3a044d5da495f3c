// Qualys VM reports, in both export forms; the two share one identity (common.ts).
export { qualysXml } from './xml.js';
export { qualysCsv } from './csv.js';
