import type { Viewer } from './session.js';

// What a signed-in person may do from the console. Today the only way in is the API token, held by
// security operations, who may do everything; identities and roles will narrow this per subject.

export type ConsoleAction = 'ticket.acknowledge' | 'ticket.request-exception';

const API_TOKEN_ROLE: ReadonlySet<ConsoleAction> = new Set(['ticket.acknowledge', 'ticket.request-exception']);

export function can(viewer: Viewer | undefined, action: ConsoleAction): boolean {
  if (!viewer) return false;
  return viewer.subject === 'api-token' && API_TOKEN_ROLE.has(action);
}
