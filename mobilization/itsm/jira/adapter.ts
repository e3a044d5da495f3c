import { createHash } from 'node:crypto';
import type { Itsm, ItsmTicket, ItsmUser, TicketUrgency } from '../index.js';
import type { DirectoryPerson, People } from '../people.js';
import { adf, jiraTimeMs, JiraError, type JiraClient, type JiraIssue, type JiraUser } from './client.js';
import { fromJiraStatus, type JiraStatusMap } from './states.js';

// Golden tickets as Jira issues. Jira has no org chart and knows people by account id, so the
// people directory says who manages whom and links our user names to Jira accounts by e-mail.

export interface JiraRouting {
  /** Project key used when no override matches. */
  defaultProject: string;
  /** Owner user name (or e-mail) -> project key. */
  byOwner: Readonly<Record<string, string>>;
  /** Business service -> project key. */
  byBusinessService: Readonly<Record<string, string>>;
}

export interface JiraItsmOptions {
  client: JiraClient;
  /** Who manages whom, and the e-mail that finds each person's Jira account. */
  directory: People;
  routing: JiraRouting;
  issueType: string;
  statusMap: JiraStatusMap;
  /** Priority names, highest first; empty: priorities are left to Jira. */
  priorities: readonly string[];
}

/** The stable label that finds a golden ticket's issue again (labels are searchable; our keys hold characters labels refuse). */
export const ticketLabel = (ticketKey: string) => `ctem-${createHash('sha256').update(ticketKey, 'utf8').digest('hex').slice(0, 16)}`;
/** The issue entity property holding our ticket key, for people and scripts. */
export const TICKET_PROPERTY = 'ctem.ticket';

/** An owner's own project wins over their asset's business service, which wins over the default. */
export function routeProject(routing: JiraRouting, owner: DirectoryPerson | undefined, ownerName: string, businessService?: string | null): string {
  const lookup = (map: Readonly<Record<string, string>>, ...keys: Array<string | undefined | null>) => {
    for (const k of keys) {
      if (!k) continue;
      const hit = Object.entries(map).find(([name]) => name.toLowerCase() === k.toLowerCase());
      if (hit) return hit[1];
    }
    return undefined;
  };
  return lookup(routing.byOwner, ownerName, owner?.user, owner?.email) ?? lookup(routing.byBusinessService, businessService) ?? routing.defaultProject;
}

/** Index into `priorities` (highest first) of a ticket's urgency: 1 -> High, 2 -> Medium, 3 -> Low with Jira's five defaults. */
const urgencyIndex = (urgency: TicketUrgency, count: number) => Math.min(count - 1, Number(urgency));

const ISSUE_FIELDS = ['summary', 'status', 'assignee', 'priority', 'labels', 'created', 'updated', 'project', 'issuetype'];

export function jiraItsm({ client, directory, routing, issueType, statusMap, priorities }: JiraItsmOptions): Itsm {
  const toTicket = (issue: JiraIssue): ItsmTicket => {
    const state = fromJiraStatus(issue.fields.status, statusMap);
    return {
      id: issue.id,
      number: issue.key,
      ...(state ? { state } : {}),
      assignedTo: issue.fields.assignee?.accountId ?? '',
      sequence: jiraTimeMs(issue.fields.updated),
      url: client.browseUrl(issue.key),
    };
  };

  /** The Jira account of someone, by e-mail (exact) or, without one, by a single match of the query. */
  async function jiraAccount(query: string, email: string | undefined): Promise<JiraUser | undefined> {
    const found = await client.searchUsers(email ?? query);
    if (email) {
      const exact = found.find((u) => u.emailAddress?.toLowerCase() === email.toLowerCase());
      // Sites that hide e-mail addresses still match on them in search: one hit is that person.
      return exact ?? (found.length === 1 && !found[0]!.emailAddress ? found[0] : undefined);
    }
    return found.length === 1 ? found[0] : undefined;
  }

  const toUser = (u: JiraUser, p: DirectoryPerson | undefined): ItsmUser => {
    const email = p?.email ?? u.emailAddress;
    return { id: u.accountId, userName: p?.user ?? u.emailAddress ?? u.accountId, name: p?.name ?? u.displayName, ...(email ? { email } : {}), active: u.active && (p?.active ?? true) };
  };

  async function findUser(userNameOrEmail: string): Promise<ItsmUser | null> {
    const p = await directory.find(userNameOrEmail);
    const email = p?.email ?? (userNameOrEmail.includes('@') ? userNameOrEmail : undefined);
    const account = await jiraAccount(userNameOrEmail, email);
    return account ? toUser(account, p) : null;
  }

  async function getIssue(id: string): Promise<JiraIssue> {
    const issue = await client.getIssue(id, ISSUE_FIELDS);
    if (!issue) throw new JiraError(404, 'GET', `/rest/api/3/issue/${id}`, ['Issue does not exist or you do not have permission to see it.'], {}, false);
    return issue;
  }

  return {
    name: 'jira',
    findUser,

    async userById(accountId) {
      const u = await client.getUser(accountId);
      if (!u) return null;
      return toUser(u, u.emailAddress ? await directory.find(u.emailAddress) : undefined);
    },

    async managementChain(userName) {
      const people = await directory.chain(userName);
      if (people.length === 0) {
        const only = await findUser(userName);
        return only ? [only] : [];
      }
      // Managers without a Jira account are still escalated to (a Slack DM); they only cannot watch the issue.
      return Promise.all(
        people.map(async (p) => {
          const account = await jiraAccount(p.user, p.email);
          return account ? toUser(account, p) : { id: '', userName: p.user, name: p.name, ...(p.email ? { email: p.email } : {}), active: p.active };
        }),
      );
    },

    async createTicket(t) {
      const label = ticketLabel(t.ticketKey);
      // Keyed by the label: a retry after a create whose answer was lost finds that issue.
      const [existing] = await client.searchJql(`labels = "${label}" ORDER BY created ASC`, ISSUE_FIELDS, 1);
      if (existing) return toTicket(existing);
      const project = routeProject(routing, await directory.find(t.owner), t.owner, t.businessService);
      const priority = priorities.length ? priorities[urgencyIndex(t.urgency, priorities.length)] : undefined;
      const created = await client.createIssue({
        fields: {
          project: { key: project },
          issuetype: { name: issueType },
          summary: t.summary.slice(0, 255),
          description: adf(t.description),
          labels: ['ctem', label],
          ...(priority ? { priority: { name: priority } } : {}),
          ...(t.assigneeId ? { assignee: { accountId: t.assigneeId } } : {}),
        },
        properties: [{ key: TICKET_PROPERTY, value: { ticketKey: t.ticketKey, urgency: t.urgency } }],
      });
      return toTicket(await getIssue(created.id));
    },

    async getTicket(id) {
      const issue = await client.getIssue(id, ISSUE_FIELDS);
      return issue ? toTicket(issue) : null;
    },

    async updateTicket(id, u) {
      const issue = await getIssue(id);
      if (u.state && fromJiraStatus(issue.fields.status, statusMap) !== u.state) {
        const target = statusMap[u.state];
        const transitions = await client.transitions(id);
        const move = transitions.find((tr) => tr.to.name.toLowerCase() === target.toLowerCase());
        if (!move) {
          const offered = transitions.map((tr) => `"${tr.name}" -> ${tr.to.name}`).join(', ') || 'none';
          throw new JiraError(409, 'POST', `/rest/api/3/issue/${id}/transitions`, [
            `${issue.key} cannot move from "${issue.fields.status.name}" to "${target}" (JIRA_STATUS_MAP ${u.state}); transitions offered: ${offered}`,
          ], {}, false);
        }
        await client.transitionIssue(id, move.id);
      }
      if (u.assigneeId && issue.fields.assignee?.accountId !== u.assigneeId) await client.editIssue(id, { fields: { assignee: { accountId: u.assigneeId } } });
      if (u.workNote) await client.addComment(id, u.workNote);
      if (u.closeNotes && u.closeNotes !== u.workNote) await client.addComment(id, `Resolution: ${u.closeNotes}`);
      if (u.watchersAdd?.length) {
        const watching = new Set((await client.watchers(id)).map((w) => w.accountId));
        for (const accountId of u.watchersAdd) if (!watching.has(accountId)) await client.addWatcher(id, accountId);
      }
      if (u.escalationLevel && priorities.length) {
        // Each level is one step above the priority the ticket was opened with: absolute, so a
        // retried escalation raises nothing twice; never lowered (someone may have raised it by hand).
        const current = priorities.findIndex((p) => p.toLowerCase() === (issue.fields.priority?.name ?? '').toLowerCase());
        const opened = (await client.getProperty(id, TICKET_PROPERTY)) as { urgency?: TicketUrgency } | null;
        const base = opened?.urgency ? urgencyIndex(opened.urgency, priorities.length) : current === -1 ? priorities.length - 1 : current + 1;
        const wanted = Math.max(0, base - u.escalationLevel);
        if (current === -1 || wanted < current) await client.editIssue(id, { fields: { priority: { name: priorities[wanted] } } });
      }
      return toTicket(await getIssue(id));
    },

    ticketUrl: ({ number }) => client.browseUrl(number),
  };
}

