import { basename } from 'node:path';
import { formatPath, type JsonEvent, type JsonPath } from '../streams/json.js';
import { ContextError, type ContextRecord } from './model.js';
import { asContextErrors, ensureNotEmpty } from './common.js';
import { objectEvents } from '../connectors/shared/json-report.js';

// The frame every context source's parse() shares: the same empty-file check first, and errors
// as ContextErrors only. The JSON sources read their files with the same checks as the report
// connectors (connectors/shared/json-report.ts).

/** Raises a ContextError at a JSON path (no field for the root). */
export type PathFail = (path: JsonPath, reason: string) => never;

/** A context file's records as `read(display)` yields them, `display` being the file's name. */
export async function* contextRecords(
  file: string,
  source: string,
  read: (display: string) => AsyncIterable<ContextRecord>,
): AsyncGenerator<ContextRecord> {
  const display = basename(file);
  await ensureNotEmpty(file, display, source);
  yield* asContextErrors(source, read(display));
}

export interface JsonContextOptions {
  source: string;
  /** Paths to build, as streamJson takes them. */
  select: readonly string[];
  /** The error when the root is not an object, naming the shape the source expects. */
  notObject: string;
}

/** A JSON context document: its root must be an object; `read` gets every other selected event. */
export function jsonContextRecords(
  file: string,
  options: JsonContextOptions,
  read: (events: AsyncIterable<JsonEvent>, fail: PathFail) => AsyncIterable<ContextRecord>,
): AsyncGenerator<ContextRecord> {
  const { source, select, notObject } = options;
  return contextRecords(file, source, (display) => {
    const fail: PathFail = (path, reason) => {
      throw new ContextError(display, source, formatPath(path) || undefined, reason);
    };
    return read(objectEvents(file, { name: display, format: source, select }, () => fail([], notObject)), fail);
  });
}
