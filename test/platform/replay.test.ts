import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { installWorkerRuntime } from '../../platform/worker.js';

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

  it('replays every recorded history against the current workflow code without a nondeterminism error', async () => {
    installWorkerRuntime();
    const histories = files.map((f) => ({ workflowId: workflowIdOf(f), history: JSON.parse(readFileSync(f, 'utf8')) }));
    const failures: string[] = [];
    let replayed = 0;
    // Results come in the order of the histories; two recordings of one scenario share a workflow id.
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundle') }, replayName: 'ctem-replay' }, histories)) {
      const file = files[replayed] ? relative(root, files[replayed]!) : result.workflowId;
      replayed++;
      if (result.error) failures.push(`${file}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(files.length);
  }, 120_000);
});
