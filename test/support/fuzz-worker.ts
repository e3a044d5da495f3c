import { basename } from 'node:path';
import { connectorFor, connectors, ReportError } from '../../discovery/connectors/index.js';
import { findingProblems } from './fuzz-findings.js';
import type { FuzzRequest, FuzzResult } from './fuzz-runner.js';

// Parses one fuzzed report per message, in a child process: a parser stuck in a synchronous loop
// can then be stopped and reported (a timer on the parser's own thread would never fire), and its
// memory is measured apart from the test's own.

async function run(request: FuzzRequest): Promise<FuzzResult> {
  const name = basename(request.file);
  const started = performance.now();
  let findings = 0;
  let detectMs = 0;
  const problems: string[] = [];
  try {
    const connector = request.format === undefined
      ? await connectorFor(request.file, name).finally(() => (detectMs = performance.now() - started))
      : connectors.find((c) => c.format === request.format)!;
    for await (const finding of connector.parse(request.file, request.options)) {
      findings++;
      // The first few problems are enough to reproduce; a hostile file could have millions.
      if (problems.length < 5) for (const p of findingProblems(finding)) problems.push(`finding ${findings}: ${p}`);
    }
    return { id: request.id, outcome: 'parsed', findings, problems, ms: performance.now() - started, detectMs };
  } catch (err) {
    if (err instanceof ReportError) {
      // A ReportError must name the file it is about.
      const named = err.message.startsWith(`${name}: `);
      return { id: request.id, outcome: named ? 'refused' : 'crashed', message: named ? err.message : `ReportError without the file name: ${err.message}`, ms: performance.now() - started, detectMs };
    }
    const e = err as Error;
    return { id: request.id, outcome: 'crashed', message: `${e?.name}: ${e?.message}\n${e?.stack ?? ''}`, ms: performance.now() - started };
  }
}

const send = (result: FuzzResult) => process.send!(result);
let pendingId = -1;
process.on('unhandledRejection', (reason) => {
  send({ id: pendingId, outcome: 'crashed', message: `unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`, ms: 0 });
});

process.on('message', (request: FuzzRequest) => {
  pendingId = request.id;
  void run(request).then(send);
});
send({ id: -1, outcome: 'parsed', findings: 0, problems: [], ms: 0 });
