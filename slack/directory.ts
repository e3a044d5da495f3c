import type { Principal } from '../access/principal.js';
import { can, ticketReach, type Permission } from '../access/roles.js';
import type { Itsm } from '../mobilization/itsm/index.js';
import { slackErrorCode, type WebClient } from './client.js';

// People across Slack and the ITSM, matched by e-mail: a Slack user's profile e-mail is the
// ServiceNow sys_user e-mail. Lookups are cached for a while (users rarely change address); the
// cache is only a shortcut, so replicas need not share it.

const HIT_MS = 60 * 60_000;
const MISS_MS = 10 * 60_000;
const GROUP_MS = 5 * 60_000;

class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  constructor(private readonly max = 5_000) {}
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until < Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: V, ttlMs: number): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until: Date.now() + ttlMs });
  }
}

export interface ItsmPerson {
  userName: string;
  name: string;
  email: string;
}

export interface DirectoryOptions {
  authorizedUsers: string[];
  authorizedUserGroup?: string;
  /** The ITSM (the simulator starts after the API, hence a getter). */
  itsm?: () => Itsm | undefined;
  /** The platform identity with an e-mail address (access/identities.ts identityByEmail); not cached, so disabling acts at once. */
  identityByEmail?: (email: string) => Promise<Principal | 'disabled' | undefined>;
}

export class SlackDirectory {
  private readonly byEmail = new TtlCache<string | null>();
  private readonly emails = new TtlCache<string | null>();
  private readonly itsm = new TtlCache<ItsmPerson | null>();
  private group: { members: Set<string>; until: number } | undefined;

  constructor(
    private readonly client: WebClient,
    private readonly options: DirectoryOptions,
  ) {}

  /** The Slack user id of an e-mail address, or undefined when nobody in the workspace has it. */
  async slackUserByEmail(email: string): Promise<string | undefined> {
    const key = email.toLowerCase();
    const cached = this.byEmail.get(key);
    if (cached !== undefined) return cached ?? undefined;
    try {
      const res = await this.client.users.lookupByEmail({ email });
      const id = res.user?.id;
      this.byEmail.set(key, id ?? null, id ? HIT_MS : MISS_MS);
      return id;
    } catch (err) {
      if (slackErrorCode(err) !== 'users_not_found') throw err;
      this.byEmail.set(key, null, MISS_MS);
      return undefined;
    }
  }

  /** A Slack user's profile e-mail (needs the users:read.email scope). */
  async emailOf(userId: string): Promise<string | undefined> {
    const cached = this.emails.get(userId);
    if (cached !== undefined) return cached ?? undefined;
    try {
      const res = await this.client.users.info({ user: userId });
      const email = res.user?.profile?.email;
      this.emails.set(userId, email ?? null, email ? HIT_MS : MISS_MS);
      return email;
    } catch (err) {
      if (slackErrorCode(err) !== 'user_not_found') throw err;
      this.emails.set(userId, null, MISS_MS);
      return undefined;
    }
  }

  /** The ITSM user behind a Slack user, matched by e-mail. */
  async itsmUserOf(userId: string): Promise<ItsmPerson | undefined> {
    const cached = this.itsm.get(userId);
    if (cached !== undefined) return cached ?? undefined;
    const email = await this.emailOf(userId);
    const itsm = this.options.itsm?.();
    if (!email || !itsm) return undefined;
    const user = await itsm.findUser(email);
    const person = user?.email && user.email.toLowerCase() === email.toLowerCase() ? { userName: user.userName, name: user.name, email: user.email } : null;
    this.itsm.set(userId, person, person ? HIT_MS : MISS_MS);
    return person ?? undefined;
  }

  /** The platform identity behind a Slack user, matched by profile e-mail: `disabled`, or undefined when none has it. */
  async identityOf(userId: string): Promise<Principal | 'disabled' | undefined> {
    if (!this.options.identityByEmail) return undefined;
    const email = await this.emailOf(userId);
    return email ? this.options.identityByEmail(email) : undefined;
  }

  /**
   * Whether a Slack user may do what needs `permission` (start campaigns, change scopes, decide
   * exceptions). A user whose e-mail maps to an identity has that identity's roles; others are
   * security operations when the configured user list or group names them.
   */
  async isAuthorized(userId: string, permission: Permission): Promise<boolean> {
    const identity = await this.identityOf(userId);
    if (identity) return identity !== 'disabled' && can(identity, permission);
    if (this.options.authorizedUsers.includes(userId)) return true;
    const group = this.options.authorizedUserGroup;
    if (!group) return false;
    if (!this.group || this.group.until < Date.now()) {
      const res = await this.client.usergroups.users.list({ usergroup: group });
      this.group = { members: new Set(res.users ?? []), until: Date.now() + GROUP_MS };
    }
    return this.group.members.has(userId);
  }

  /** Who may act on a ticket from Slack: an identity whose roles reach the ticket; otherwise its owner, or security operations. */
  async mayActOnTicket(userId: string, owner: string | null): Promise<{ allowed: boolean; actor: string }> {
    const identity = await this.identityOf(userId);
    if (identity === 'disabled') return { allowed: false, actor: `slack:${userId}` };
    if (identity) {
      const reach = ticketReach(identity, 'tickets.act');
      // Slack checks an owner's own tickets; a manager's reports are checked by the API and console.
      const within = reach.kind === 'all' || Boolean(owner && reach.names.some((n) => n.toLowerCase() === owner.toLowerCase()));
      return { allowed: can(identity, 'tickets.act') && within, actor: identity.name };
    }
    const person = await this.itsmUserOf(userId);
    const actor = person?.userName ?? `slack:${userId}`;
    const isOwner = Boolean(owner && person && (owner === person.userName || owner.toLowerCase() === person.email.toLowerCase()));
    return { allowed: isOwner || (await this.isAuthorized(userId, 'tickets.act')), actor };
  }
}
