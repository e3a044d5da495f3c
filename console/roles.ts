import { can as principalCan, type Permission } from '../access/roles.js';
import type { Viewer } from './session.js';

// What a signed-in person may do from the console: the roles of their identity (access/roles.ts),
// the same as through the API. Pages show a form only to those who may use it.

export type ConsoleAction = 'ticket.acknowledge' | 'ticket.request-exception';

const ACTION_PERMISSIONS: Readonly<Record<ConsoleAction, Permission>> = {
  'ticket.acknowledge': 'tickets.act',
  'ticket.request-exception': 'tickets.act',
};

export function can(viewer: Viewer | undefined, action: ConsoleAction): boolean {
  return !!viewer && principalCan(viewer.principal, ACTION_PERMISSIONS[action]);
}
