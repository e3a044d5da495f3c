import { defineSignal, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import type { EscalationDigestActivities } from '../activities/escalation-digest.js';
import type { Person } from '../mobilization/notifier.js';

// One escalation round of one manager (id `escalation-digest:<manager>`): the escalate activity
// signals-with-start it for every escalation to that manager; it collects for a window, then one
// activity sends the manager one digest of every escalation recorded for them and not yet told,
// and the workflow completes. The escalations' rows in PostgreSQL are the truth (a signal only
// says "there is news"), so a lost or repeated signal changes nothing that is sent. An escalation
// signalled while the digest goes out opens a next round in the same run; one signalled after the
// run completed starts a new run, which is that next round.

export interface EscalationDigestInput {
  manager: Person;
  /** How long a round collects escalations before its digest goes out. */
  windowMs: number;
}

/** An escalation to the manager was recorded; the owner and link decorate the digest's line. */
export interface EscalationQueued {
  ticketKey: string;
  ticketUrl?: string;
  owner: Person;
}

export const escalationQueuedSignal = defineSignal<[EscalationQueued]>('escalationQueued');

const { sendEscalationDigest } = proxyActivities<EscalationDigestActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

const iso = (ms: number) => new Date(ms).toISOString();

export async function escalationDigestWorkflow(input: EscalationDigestInput): Promise<{ digests: string[] }> {
  const tickets: Record<string, Omit<EscalationQueued, 'ticketKey'>> = {};
  let queued = 0;
  setHandler(escalationQueuedSignal, ({ ticketKey, ...line }) => {
    queued++;
    tickets[ticketKey] = line;
  });

  const digests: string[] = [];
  for (;;) {
    const roundAt = Date.now();
    await sleep(Math.max(1, input.windowMs), { summary: `escalation round of ${input.manager.userName}: digest at ${iso(roundAt + input.windowMs)}` });
    const seen = queued;
    // The round's key comes from workflow time, so a retried activity composes the same digest.
    const { key } = await sendEscalationDigest({ manager: input.manager, roundAt: iso(roundAt), at: iso(Date.now()), tickets });
    if (key) digests.push(key);
    if (queued === seen) return { digests };
  }
}
