import type { TicketState } from '../index.js';
import type { JiraStatus } from './client.js';

// Jira workflows are per site and per project: the neutral states map to status names
// (JIRA_STATUS_MAP); a status outside the map falls back to its category.

export type JiraStatusMap = Readonly<Record<TicketState, string>>;

export const DEFAULT_JIRA_STATUS_MAP: JiraStatusMap = {
  new: 'To Do',
  in_progress: 'In Progress',
  on_hold: 'On Hold',
  resolved: 'Resolved',
  closed: 'Done',
};

/** The neutral state of a Jira status: by name in the map, else by category (new, indeterminate, done). */
export function fromJiraStatus(status: Pick<JiraStatus, 'name' | 'statusCategory'>, map: JiraStatusMap = DEFAULT_JIRA_STATUS_MAP): TicketState | undefined {
  const name = status.name.trim().toLowerCase();
  for (const [state, statusName] of Object.entries(map) as Array<[TicketState, string]>) {
    if (statusName.toLowerCase() === name) return state;
  }
  // A done status not in the map is a resolution claim: the workflow still verifies it by scan.
  const byCategory: Partial<Record<string, TicketState>> = { new: 'new', indeterminate: 'in_progress', done: 'resolved' };
  return byCategory[status.statusCategory?.key ?? ''];
}

/** Reads `new=To Do,in_progress=In Progress,...`; states left out keep their default. */
export function parseJiraStatusMap(text: string | undefined): JiraStatusMap {
  const map: Record<string, string> = { ...DEFAULT_JIRA_STATUS_MAP };
  if (!text?.trim()) return map as JiraStatusMap;
  for (const part of text.split(',')) {
    const [state, name] = part.split('=').map((s) => s.trim());
    if (!state || !name) throw new RangeError(`"${part.trim()}" is not state=Status Name`);
    if (!(state in DEFAULT_JIRA_STATUS_MAP)) throw new RangeError(`${state} is not a ticket state (new, in_progress, on_hold, resolved, closed)`);
    map[state] = name;
  }
  return map as JiraStatusMap;
}
