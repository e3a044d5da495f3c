import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseWorkerQueues, WORKER_CACHED_WORKFLOWS } from '../../config/index.js';
import * as workflows from '../../workflows/index.js';
import { queueName, taskQueueFor, WORKFLOW_QUEUES } from '../../workflows/task-queues.js';
import { workerTaskQueue } from '../../platform/worker.js';

// The task queue map and how the code uses it, read from the sources: every workflow start names
// its queue through taskQueueFor, and child workflows (which run on their parent's queue) never
// cross from one kind to the other.

const root = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name.startsWith('.')) return [];
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.tsx?$/.test(e.name) ? [path] : [];
  });
}

const CODE_DIRS = ['access', 'activities', 'api', 'cli', 'console', 'db', 'discovery', 'metrics', 'mobilization', 'platform', 'prioritization', 'scoping', 'slack', 'validation', 'workflows'];

describe('the workflow type -> task queue map', () => {
  it('names a queue for every workflow the worker runs, and only those', () => {
    expect(Object.keys(WORKFLOW_QUEUES).sort()).toEqual(Object.keys(workflows).sort());
  });

  it('puts tickets and digests on remediation, everything else on bulk', () => {
    expect(taskQueueFor('ctem', workflows.remediationWorkflow)).toBe('ctem-remediation');
    expect(taskQueueFor('ctem', 'escalationDigestWorkflow')).toBe('ctem-remediation');
    for (const type of ['discoveryWorkflow', 'rescoreWorkflow', 'campaignWorkflow', 'validationWorkflow', 'intelFeedWorkflow', 'metricsSnapshotWorkflow'] as const) {
      expect(taskQueueFor('ctem', type)).toBe('ctem-bulk');
    }
    expect(() => taskQueueFor('ctem', { name: 'someOtherWorkflow' })).toThrow(/no task queue for workflow type "someOtherWorkflow"/);
  });

  it('every workflow start outside the worker takes its queue from the map', () => {
    const offenders: string[] = [];
    for (const file of CODE_DIRS.flatMap(sources)) {
      const lines = readFileSync(join(root, file), 'utf8').split('\n');
      lines.forEach((line, i) => {
        // A task queue given to a start, a signal-with-start or a schedule's action.
        // A property `taskQueue: ...` or the shorthand `{ taskQueue }` (not a variable passed on).
        if (!/(?<![.\w])taskQueue\s*:|[{,]\s*taskQueue\s*[,}]/.test(line) || /taskQueue\??: string/.test(line)) return;
        if (line.includes('taskQueueFor(')) return;
        // Dependencies carry the base name (CTEM_TASK_QUEUE) to the code that starts workflows.
        if (/taskQueue: config\.temporal\.taskQueue\b/.test(line) && !/workflow\.|action:/.test(line)) return;
        // The worker polls queues; it starts nothing.
        if (file === join('platform', 'worker.ts')) return;
        offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('child workflows run on their parent’s queue and stay within its kind', () => {
    const pairs: string[] = [];
    for (const file of sources('workflows')) {
      const text = readFileSync(join(root, file), 'utf8');
      const parents = [...text.matchAll(/export async function (\w+Workflow)\(/g)].map((m) => m[1]!);
      for (const call of text.matchAll(/\b(?:executeChild|startChild)\(\s*'?(\w+)'?\s*,\s*\{([^}]*)/g)) {
        const [, child, options] = call;
        expect(parents, `${relative(root, file)} starts ${child} outside a workflow function`).toHaveLength(1);
        const parent = parents[0] as keyof typeof WORKFLOW_QUEUES;
        expect(options, `${parent} -> ${child} sets no task queue`).not.toMatch(/taskQueue/);
        expect(WORKFLOW_QUEUES[child as keyof typeof WORKFLOW_QUEUES], `${parent} -> ${child}`).toBe(WORKFLOW_QUEUES[parent]);
        pairs.push(`${parent}->${child}`);
      }
    }
    // The scan found the known children (a regular expression that matched nothing would pass vacuously).
    expect(pairs).toEqual(expect.arrayContaining(['campaignWorkflow->rescoreWorkflow', 'discoveryWorkflow->rescoreWorkflow', 'rescoreWorkflow->validationWorkflow', 'sourceDiscoveryWorkflow->discoveryWorkflow']));
  });
});

describe('worker queues and sizes (CTEM_WORKER_QUEUES, CTEM_WORKER_*)', () => {
  it('polls both kinds and the former single queue by default', () => {
    const config = loadConfig({ CTEM_TASK_QUEUE: 'acme' });
    expect(config.worker.queues).toEqual(['bulk', 'remediation', 'legacy']);
    expect(config.worker.queues.map((q) => workerTaskQueue(config.temporal.taskQueue, q))).toEqual(['acme-bulk', 'acme-remediation', 'acme']);
    expect(queueName('acme', 'bulk')).toBe('acme-bulk');
    // Few heavy activities on bulk, many light ones on remediation.
    expect(config.worker.slots.bulk.activities).toBeLessThan(config.worker.slots.remediation.activities);
  });

  it('takes a list, in any order and case, and sizes from the environment', () => {
    expect(parseWorkerQueues('Remediation, legacy')).toEqual(['remediation', 'legacy']);
    expect(parseWorkerQueues('bulk')).toEqual(['bulk']);
    expect(parseWorkerQueues('bulk,both')).toEqual(['bulk', 'remediation', 'legacy']);
    const config = loadConfig({ CTEM_WORKER_QUEUES: 'bulk', CTEM_WORKER_BULK_ACTIVITIES: '2', CTEM_WORKER_BULK_WORKFLOW_TASKS: '6', CTEM_WORKER_REMEDIATION_ACTIVITIES: '80' });
    expect(config.worker).toEqual({ queues: ['bulk'], slots: { bulk: { activities: 2, workflowTasks: 6 }, remediation: { activities: 80, workflowTasks: 40 } } });
  });

  it('refuses an unknown queue, an empty list and sizes the SDK would not take, naming the variable', () => {
    expect(() => loadConfig({ CTEM_WORKER_QUEUES: 'bulk,urgent' })).toThrow(/CTEM_WORKER_QUEUES: unknown queue "urgent" \(expected both, or a list of bulk, remediation, legacy\)/);
    expect(() => parseWorkerQueues(' , ', '--queues')).toThrow(ConfigError);
    expect(() => parseWorkerQueues(' , ', '--queues')).toThrow(/--queues: name at least one queue/);
    expect(() => loadConfig({ CTEM_WORKER_BULK_ACTIVITIES: '0' })).toThrow(/CTEM_WORKER_BULK_ACTIVITIES/);
    // The SDK needs at least two workflow task slots, and no more than the workflows it caches.
    expect(() => loadConfig({ CTEM_WORKER_REMEDIATION_WORKFLOW_TASKS: '1' })).toThrow(/CTEM_WORKER_REMEDIATION_WORKFLOW_TASKS/);
    expect(() => loadConfig({ CTEM_WORKER_BULK_WORKFLOW_TASKS: String(WORKER_CACHED_WORKFLOWS.bulk + 1) })).toThrow(/CTEM_WORKER_BULK_WORKFLOW_TASKS/);
  });
});
