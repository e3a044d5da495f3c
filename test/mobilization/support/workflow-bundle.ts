import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../../../platform/worker.js';

// The workflow bundle built once per test file: a file that starts several workers (one per test,
// or one before and one after a restart) pays webpack once, through CTEM_WORKFLOW_BUNDLE.

let built: Promise<string> | undefined;

export function workflowBundleFile(): Promise<string> {
  built ??= bundleWorkflowCode({ workflowsPath, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never }).then(({ code }) => {
    const file = join(mkdtempSync(join(tmpdir(), 'ctem-bundle-')), 'workflows.js');
    writeFileSync(file, code);
    return file;
  });
  return built;
}
