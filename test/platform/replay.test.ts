import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { Resource } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import { bundleWorkflowCode, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { bundleHasTracing, WORKFLOW_TRACING_MODULE } from '../../platform/tracing.js';
import { installWorkerRuntime, workflowsPath } from '../../platform/worker.js';

// Remediation workflows live as long as their tickets (months), so the workflow code of every
// release must replay the histories that earlier releases wrote. test/histories/<date>/ holds real
// histories of every workflow type recorded by scripts/record-histories.ts (and any history
// downloaded from a running deployment can be dropped beside them); each is replayed against the
// current code (the bundle test/global-setup.ts builds from workflows/). A change that breaks one
// needs `patched()`, not a new recording.

const root = join(import.meta.dirname, '..', 'histories');

function historyFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? historyFiles(path) : name.endsWith('.json') && name !== 'ids.json' ? [path] : [];
  });
}

/** The workflow id a history ran under (workflow code may read it): from ids.json beside it, else the file name. */
function workflowIdOf(file: string): string {
  const ids = join(dirname(file), 'ids.json');
  const known = existsSync(ids) ? (JSON.parse(readFileSync(ids, 'utf8')) as Record<string, string>)[basename(file)] : undefined;
  return known ?? basename(file, '.json');
}

const files = historyFiles(root).sort();
const WORKFLOW_TYPES = ['campaignWorkflow', 'discoveryWorkflow', 'escalationDigestWorkflow', 'huntingWorkflow', 'intelFeedWorkflow', 'metricsSnapshotWorkflow', 'orphanReportWorkflow', 'remediationWorkflow', 'rescoreWorkflow', 'sourceDiscoveryWorkflow', 'validationWorkflow'];

const workflowTypeOf = (history: { events: Array<{ workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }> }) =>
  history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

describe('replay of recorded workflow histories', () => {
  it('has a recorded history of every workflow type the worker runs', () => {
    const types = new Set(files.map((f) => workflowTypeOf(JSON.parse(readFileSync(f, 'utf8')))));
    expect([...types].sort()).toEqual(WORKFLOW_TYPES);
  });

  async function replayAll(options: Omit<ReplayWorkerOptions, 'replayName'>): Promise<{ failures: string[]; replayed: number }> {
    installWorkerRuntime();
    const histories = files.map((f) => ({ workflowId: workflowIdOf(f), history: JSON.parse(readFileSync(f, 'utf8')) }));
    const failures: string[] = [];
    let replayed = 0;
    // Results come in the order of the histories; two recordings of one scenario share a workflow id.
    for await (const result of Worker.runReplayHistories({ ...options, replayName: 'ctem-replay' }, histories)) {
      const file = files[replayed] ? relative(root, files[replayed]!) : result.workflowId;
      replayed++;
      if (result.error) failures.push(`${file}: ${result.error.message}`);
    }
    return { failures, replayed };
  }

  it('replays every recorded history against the current workflow code without a nondeterminism error', async () => {
    // The default bundle is the plain one: tracing's interceptors are bundled only when tracing is on.
    expect(bundleHasTracing(readFileSync(inject('workflowBundle'), 'utf8'))).toBe(false);
    const { failures, replayed } = await replayAll({ workflowBundle: { codePath: inject('workflowBundle') } });
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  }, 120_000);

  // Turning tracing on (OTEL_EXPORTER_OTLP_ENDPOINT) bundles OpenTelemetry's workflow interceptors
  // into the sandbox; workflows started without them must still replay with them.
  it('replays every recorded history with the workflow tracing interceptors bundled in', async () => {
    installWorkerRuntime();
    const { code } = await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [WORKFLOW_TRACING_MODULE], logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
    expect(bundleHasTracing(code)).toBe(true);
    const processor = new SimpleSpanProcessor(new InMemorySpanExporter());
    const { failures, replayed } = await replayAll({ workflowBundle: { code }, sinks: { exporter: makeWorkflowExporter(processor, new Resource({ 'service.name': 'ctem-replay' })) } as never });
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  }, 240_000);
});
