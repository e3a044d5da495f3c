import { Context, log } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { composeDigest, digestNotice, markDigestSent } from '../mobilization/escalation-digests.js';
import type { Notifier, Person } from '../mobilization/notifier.js';

export interface EscalationDigestDeps {
  database: Database;
  /** Delivers the digest (a Slack DM to the manager); without one, digests are only recorded. */
  notifier?: Notifier;
}

/** A notifier that keeps failing does not hold the manager's next rounds: after this many attempts the digest stays recorded, unsent. */
const NOTIFIER_ATTEMPTS = 5;

// The escalation digest workflow's activity: names and signatures are part of running workflows' histories.
export function createEscalationDigestActivities({ database, notifier }: EscalationDigestDeps) {
  return {
    /**
     * Composes the round's digest once (every escalation to the manager not yet told) and delivers it
     * once: a retry finds the digest composed, and a delivered digest is not sent again.
     */
    async sendEscalationDigest(input: {
      manager: Person;
      roundAt: string;
      /** Workflow time when the round closed: days overdue are counted to it. */
      at: string;
      tickets: Record<string, { ticketUrl?: string; owner?: Person }>;
    }): Promise<{ key: string | null; tickets: number; delivered: boolean }> {
      const digest = await composeDigest(database.sql, input.manager.userName, new Date(input.roundAt));
      if (!digest) return { key: null, tickets: 0, delivered: false };
      const result = { key: digest.key, tickets: digest.ticketKeys.length };
      if (digest.sentAt) return { ...result, delivered: true };
      if (!notifier) return { ...result, delivered: false };
      const notice = await digestNotice(database.sql, digest.key, input.manager, input.roundAt, input.tickets, Date.parse(input.at));
      try {
        await notifier.escalationDigest(notice);
      } catch (err) {
        if (Context.current().info.attempt < NOTIFIER_ATTEMPTS) throw err;
        log.warn('escalation digest not delivered; it stays recorded and the ITSM work notes stand', { key: digest.key, error: (err as Error).message });
        return { ...result, delivered: false };
      }
      await markDigestSent(database.sql, digest.key);
      return { ...result, delivered: true };
    },
  };
}

export type EscalationDigestActivities = ReturnType<typeof createEscalationDigestActivities>;
