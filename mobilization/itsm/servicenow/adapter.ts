import type { Itsm, ItsmTicket, ItsmUser } from '../index.js';
import type { DirectoryPerson, People } from '../people.js';
import type { Incident, IncidentFields, ServiceNowClient, User } from './client.js';
import { fromServiceNowState, toServiceNowState } from './states.js';

// Golden tickets as ServiceNow incidents: keyed by correlation_id, escalation in the `escalation`
// field and the watch list, work notes in the journal.

const toUser = (u: User): ItsmUser => ({
  id: u.sys_id,
  userName: u.user_name,
  name: u.name,
  ...(u.email ? { email: u.email } : {}),
  active: u.active !== 'false',
});

export function serviceNowItsm(client: ServiceNowClient): Itsm {
  const toTicket = (incident: Incident): ItsmTicket => {
    const state = fromServiceNowState(incident.state);
    return {
      id: incident.sys_id,
      number: incident.number,
      ...(state ? { state } : {}),
      assignedTo: incident.assigned_to,
      sequence: Number(incident.sys_mod_count) || 0,
      url: client.incidentUrl(incident.sys_id),
    };
  };
  return {
    name: 'servicenow',
    async findUser(userNameOrEmail) {
      const user = await client.getUser(userNameOrEmail);
      return user ? toUser(user) : null;
    },
    async userById(id) {
      const user = await client.getUser(id);
      return user ? toUser(user) : null;
    },
    async managementChain(userName) {
      return (await client.managementChain(userName)).map(toUser);
    },
    async createTicket(t) {
      const incident = await client.createIncident({
        correlation_id: t.ticketKey,
        correlation_display: 'CTEM golden ticket',
        short_description: t.summary,
        description: t.description,
        ...(t.assigneeId ? { assigned_to: t.assigneeId } : {}),
        urgency: t.urgency,
        impact: t.urgency,
        category: 'security',
      });
      return toTicket(incident);
    },
    async getTicket(id) {
      const incident = await client.getIncident(id);
      return incident ? toTicket(incident) : null;
    },
    async updateTicket(id, u) {
      const fields: IncidentFields = {
        ...(u.workNote !== undefined ? { work_notes: u.workNote } : {}),
        ...(u.state ? { state: toServiceNowState(u.state) } : {}),
        ...(u.assigneeId ? { assigned_to: u.assigneeId } : {}),
      };
      if (u.closeNotes !== undefined) {
        fields.close_code = 'Solved (Permanently)';
        fields.close_notes = u.closeNotes;
      }
      if (u.escalationLevel !== undefined) fields.escalation = String(Math.min(u.escalationLevel, 3));
      if (u.watchersAdd?.length) {
        const incident = await client.getIncident(id);
        const watchers = (incident?.watch_list ?? '').split(',').filter(Boolean);
        fields.watch_list = [...new Set([...watchers, ...u.watchersAdd])].join(',');
      }
      return toTicket(await client.updateIncident(id, fields));
    },
    ticketUrl: ({ id }) => client.incidentUrl(id),
  };
}

/** ServiceNow's sys_user as the people directory of another ITSM (Jira), when an organisation has both. */
export function serviceNowPeople(client: ServiceNowClient): People {
  const toPerson = (u: User, manager: User | undefined): DirectoryPerson => ({
    user: u.user_name,
    name: u.name,
    ...(u.email ? { email: u.email } : {}),
    ...(manager ? { manager: manager.user_name } : {}),
    active: u.active !== 'false',
  });
  return {
    async find(userOrEmail) {
      const [u, manager] = await client.managementChain(userOrEmail);
      return u ? toPerson(u, manager) : undefined;
    },
    async chain(userOrEmail) {
      const chain = await client.managementChain(userOrEmail);
      return chain.map((u, i) => toPerson(u, chain[i + 1]));
    },
  };
}
