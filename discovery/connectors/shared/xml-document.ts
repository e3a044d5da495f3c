import { basename } from 'node:path';
import { ReportError } from '../../model.js';
import { xmlEvents, type XmlEvent, type XmlStreamOptions } from '../../streams/xml.js';

/**
 * xmlEvents for a document whose root element must be `root`: another format's XML is refused
 * at its first event, with the same message in every XML connector.
 */
export async function* rootedXmlEvents(file: string, root: string, options: XmlStreamOptions): AsyncGenerator<XmlEvent> {
  let first = true;
  for await (const event of xmlEvents(file, options)) {
    if (first && event.path[0] !== root) {
      throw new ReportError(basename(file), options.format, event.path[0], `root element is <${event.path[0]}>, expected <${root}>`);
    }
    first = false;
    yield event;
  }
}
