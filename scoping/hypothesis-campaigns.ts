import type { Client } from '@temporalio/client';
import type { Sql } from '../db/client.js';
import { startCampaign } from './campaigns.js';
import { getHypothesis, HypothesisNotFoundError } from './hypotheses.js';
import { saveScope } from './scopes.js';

// A campaign started from a hunting hypothesis: the ordinary campaign (rescans, rescoring,
// validation) over the hypothesis's assets, with its result recorded before and after so what the
// campaign removed from the urgent backlog can be counted.

/** The saved scope a hypothesis's campaigns run over: `hunt.<name>`, the hypothesis's selector. */
export const huntScopeName = (hypothesis: string) => `hunt.${hypothesis}`;

export async function startHypothesisCampaign(
  sql: Sql,
  temporal: { client: Client; taskQueue: string },
  input: { hypothesis: string; requestedBy: string; channel?: string },
): Promise<{ workflowId: string; scope: string }> {
  const h = await getHypothesis(sql, input.hypothesis);
  if (!h) throw new HypothesisNotFoundError(input.hypothesis);
  // Campaigns and validation runs name a saved scope; this one follows the hypothesis's selector as it is now.
  const scope = huntScopeName(h.name);
  await saveScope(sql, { name: scope, selector: h.query.scope ?? {}, description: `assets of hunting hypothesis ${h.name} (saved when a campaign starts from it)` });
  const { workflowId } = await startCampaign(temporal, {
    scope,
    hypothesis: h.statement,
    hypothesisName: h.name,
    requestedBy: input.requestedBy,
    ...(input.channel ? { channel: input.channel } : {}),
  });
  return { workflowId, scope };
}
