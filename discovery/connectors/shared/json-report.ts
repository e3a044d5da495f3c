import { ReportError } from '../../model.js';
import { formatPath, streamJson, type JsonEvent, type JsonPath, type StreamJsonOptions } from '../../streams/json.js';

// The checks every JSON reader (report connectors and context sources) makes before its own
// logic, written once so that detection and error wording cannot drift between formats.

/** The head without a BOM or leading white space: where detect() looks for the opening `{`. */
export const jsonStart = (head: string): string => head.replace(/^\uFEFF/, '').trimStart();

/** Whether the file is a JSON object at all: every object format's detect() starts here. */
export const opensObject = (head: string): boolean => jsonStart(head).startsWith('{');

export type ReportFail = (file: string, path: JsonPath, reason: string) => never;

/** A connector's `fail`: a ReportError at a JSON path, with no field for the root. */
export const reportFail = (format: string): ReportFail => (file, path, reason) => {
  throw new ReportError(file, format, formatPath(path) || undefined, reason);
};

/** A list's own event: an array, or null (read as no entries). */
export const isArrayOrNull = (event: JsonEvent): boolean => (event.kind === 'value' ? event.value === null : event.type === 'array');

/**
 * streamJson for a document whose root must be an object: the root's own event is checked
 * (`notObject` throws) and not passed on, so readers only see the paths they selected.
 */
export async function* objectEvents(file: string, options: StreamJsonOptions, notObject: () => never): AsyncGenerator<JsonEvent> {
  for await (const event of streamJson(file, options)) {
    if (event.path.length > 0) yield event;
    else if (event.kind === 'value' || event.type !== 'object') notObject();
  }
}
