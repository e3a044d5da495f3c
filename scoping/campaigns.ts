import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { campaignWorkflow, type CampaignInput } from '../workflows/campaign.js';
import { CTEM_PHASE } from '../workflows/search-attributes.js';

// What the API and the Slack bot do to start a campaign: one workflow per campaign, its id readable
// in the Temporal UI (`campaign:<scope>:<short id>`). Checking the scope and who asks is the caller's.

export async function startCampaign(temporal: { client: Client; taskQueue: string }, input: CampaignInput): Promise<{ workflowId: string }> {
  const workflowId = `campaign:${input.scope}:${randomBytes(4).toString('hex')}`;
  await temporal.client.workflow.start(campaignWorkflow, {
    workflowId,
    taskQueue: temporal.taskQueue,
    args: [input],
    typedSearchAttributes: [{ key: CTEM_PHASE, value: 'scoping' }],
  });
  return { workflowId };
}
