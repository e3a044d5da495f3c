import type { Sql } from '../db/client.js';

// What the Slack front remembers between requests and across processes: request signatures already
// served (replay protection) and notices already posted (at most one message per notice id).

/** Records a request signature; false when it was seen before (a replay). */
export async function recordSlackRequest(sql: Sql, signature: string): Promise<boolean> {
  const rows = await sql`insert into slack_requests (signature) values (${signature}) on conflict do nothing returning signature`;
  return rows.length === 1;
}

/** Signatures older than the timestamp window are refused by the timestamp check anyway. */
export async function pruneSlackRequests(sql: Sql, olderThanMs: number): Promise<number> {
  return (await sql`delete from slack_requests where received_at < now() - ${`${olderThanMs} milliseconds`}::interval`).count;
}

/**
 * Claims a notice before it is posted: true for the first claim only. A claim whose post failed is
 * released (releaseNotice) so a retry may post; a process that dies between posting and recording
 * leaves the claim in place, so the notice is sent at most once.
 */
export async function claimNotice(sql: Sql, noticeId: string, kind: string, channel: string): Promise<boolean> {
  const rows = await sql`
    insert into slack_notices (notice_id, kind, channel) values (${noticeId}, ${kind}, ${channel})
    on conflict do nothing returning notice_id`;
  return rows.length === 1;
}

export async function releaseNotice(sql: Sql, noticeId: string): Promise<void> {
  await sql`delete from slack_notices where notice_id = ${noticeId} and message_ts is null`;
}

export async function recordNoticeSent(sql: Sql, noticeId: string, channel: string, messageTs: string): Promise<void> {
  await sql`update slack_notices set channel = ${channel}, message_ts = ${messageTs} where notice_id = ${noticeId}`;
}

/** A golden ticket by its key or its ITSM number (INC0010001). */
export async function ticketKeyFor(sql: Sql, keyOrNumber: string): Promise<string | undefined> {
  const [row] = await sql`select key from tickets where key = ${keyOrNumber} or external_number = ${keyOrNumber} order by (key = ${keyOrNumber}) desc limit 1`;
  return row?.key as string | undefined;
}
