// Qualys VM reports, in both export forms, and PCI scan CSVs; all share one identity (common.ts).
export { qualysXml } from './xml.js';
export { qualysCsv } from './csv.js';
export { qualysPciCsv } from './pci-csv.js';
