import { basename } from 'node:path';
import type { Connector, ParseOptions } from '../index.js';
import type { NormalizedFinding } from '../../model.js';
import { hostNamer, type HostNamer } from '../nessus/host.js';
import { csvRows, sniffCsvHeader, type CsvColumns, type CsvRow } from '../../streams/csv.js';

// A scanner's CSV export is its columns (found by name) and what one row means: detection (a header
// row with the required columns) and row-by-row streaming are the same for every CSV format.

export interface CsvConnectorSpec<K extends string> {
  format: string;
  description: string;
  columns: CsvColumns<K>;
  /**
   * The findings of one data row; `name` is the file's name for error messages. `host` names a
   * host as reportedHost() does, one AssetRef for consecutive rows of one host (one per parse).
   */
  rowFindings(row: CsvRow<K>, name: string, options: ParseOptions, host: HostNamer): Iterable<NormalizedFinding>;
}

export function csvConnector<K extends string>(spec: CsvConnectorSpec<K>): Connector {
  const { format, description, columns } = spec;
  return {
    format,
    description,
    detect: (head) => sniffCsvHeader(head, columns),
    async *parse(file, options) {
      const name = basename(file);
      const host = hostNamer();
      for await (const row of csvRows(file, { format, columns })) yield* spec.rowFindings(row, name, options, host);
    },
  };
}
