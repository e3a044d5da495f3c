import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { connectorFor, ReportError } from '../../discovery/connectors/index.js';

/** `ctem parse FILE [--format F] [--target NAME]`: normalized findings as JSON lines, no database. */
export async function parseCommand(args: { file?: string; format?: string; target?: string }): Promise<number> {
  if (!args.file) {
    console.error('usage: ctem parse FILE [--format F] [--target NAME]');
    return 2;
  }
  const name = basename(args.file);
  if (!existsSync(args.file)) {
    console.error(`${name}: ${args.format ?? 'unknown'}: file not found`);
    return 1;
  }
  if (statSync(args.file).isDirectory()) {
    console.error(`${args.file}: is a directory`);
    return 1;
  }
  try {
    const connector = await connectorFor(args.file, name, args.format);
    let lines = '';
    for await (const finding of connector.parse(args.file, args.target ? { target: args.target } : {})) {
      lines += JSON.stringify(finding) + '\n';
      if (lines.length > 64 * 1024) {
        if (!process.stdout.write(lines)) await new Promise((r) => process.stdout.once('drain', r));
        lines = '';
      }
    }
    process.stdout.write(lines);
    return 0;
  } catch (err) {
    if (err instanceof ReportError) {
      console.error(new ReportError(name, err.format, err.field, err.reason).message);
      return 1;
    }
    throw err;
  }
}
