import { ApplicationFailure } from '@temporalio/activity';
import type { Database } from '../db/client.js';
import { CampaignNotFoundError, completeCampaign, failCampaign, planCampaign, type CampaignPublisher, type DiscoveryRun } from '../scoping/campaigns.js';

// The campaign workflow's activities over scoping/campaigns.ts. Workflows receive run descriptions
// and counts, never findings.

// The workflow and the worker name these types here.
export type { CampaignPublisher, DiscoveryRun } from '../scoping/campaigns.js';

export interface CampaignDeps {
  database: Database;
  temporal: { namespace: string; uiUrl?: string };
  publisher?: CampaignPublisher;
}

/** A scope or campaign that is not there will not appear on a retry. */
function notFound<T>(run: () => Promise<T>): Promise<T> {
  return run().catch((err: unknown) => {
    throw err instanceof CampaignNotFoundError ? ApplicationFailure.nonRetryable(err.message, 'NotFound') : err;
  });
}

export function createCampaignActivities({ database, temporal, publisher }: CampaignDeps) {
  return {
    /** Records the campaign and plans its discovery runs over the scope. */
    async planCampaign(input: { campaignId: string; scope: string; hypothesis?: string; requestedBy: string }): Promise<{ assets: number; runs: DiscoveryRun[] }> {
      return notFound(() => planCampaign(database, input));
    },

    /** Reads what the campaign surfaced in its scope, records it, and announces it. */
    async publishCampaignResults(input: { campaignId: string; channel?: string; discovery: { runs: number; failed: number } }): Promise<{ top: number; openExposures: number; published: boolean }> {
      const results = await notFound(() => completeCampaign(database, temporal, input));
      if (publisher) await publisher.campaignResults(results);
      return { top: results.top.length, openExposures: results.openExposures, published: Boolean(publisher) };
    },

    /** Records the failure and says so where the results would have gone. */
    async failCampaign(input: { campaignId: string; scope: string; channel?: string; error: string }): Promise<void> {
      const failure = await failCampaign(database, temporal, input);
      await publisher?.campaignFailed(failure);
    },
  };
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities>;
