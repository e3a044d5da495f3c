import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { connectorFor, parseReport, ReportError, warningLine, type ParseOptions } from '../../discovery/connectors/index.js';

/** Raised at the first warning under --strict: it ends the parse like a ReportError. */
class StrictStop extends Error {}

/**
 * `ctem parse FILE [--format F] [--target NAME] [--strict]`: normalized findings as JSON lines, no
 * database. Warnings go to stderr; with --strict the first one is an error and stdout stays empty.
 */
export async function parseCommand(args: { file?: string; format?: string; target?: string; strict?: boolean }): Promise<number> {
  if (!args.file) {
    console.error('usage: ctem parse FILE [--format F] [--target NAME] [--strict]');
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
  const options: ParseOptions = {
    ...(args.target ? { target: args.target } : {}),
    warn: (w) => {
      console.error(warningLine({ ...w, file: name }));
      if (args.strict) throw new StrictStop();
    },
  };
  try {
    const connector = await connectorFor(args.file, name, args.format);
    // Under --strict nothing is written until the whole report has been read without a warning.
    const held: string[] = [];
    let lines = '';
    for await (const finding of parseReport(connector, args.file, name, options)) {
      lines += JSON.stringify(finding) + '\n';
      if (lines.length > 64 * 1024) {
        if (args.strict) held.push(lines);
        else if (!process.stdout.write(lines)) await new Promise((r) => process.stdout.once('drain', r));
        lines = '';
      }
    }
    for (const chunk of held) if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
    process.stdout.write(lines);
    return 0;
  } catch (err) {
    if (err instanceof StrictStop) return 1;
    if (err instanceof ReportError) {
      console.error(new ReportError(name, err.format, err.field, err.reason).message);
      return 1;
    }
    throw err;
  }
}
