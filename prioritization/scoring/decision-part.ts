import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import { TIER_BY_RANK, type Policy } from '../policy.js';
import { CELL_COUNT, cellTable, dueDaysOf, MODIFIER_SPAN, SEVERITY_BASE, tableRow } from './decision.js';
import { policyWording, scoreFactorText, tierFactor } from './explanation.js';
import { jsonbArray, type Fragment, type Tx } from './sql.js';

/** PostgreSQL's md5(text)::uuid. */
export function md5Uuid(text: string): string {
  const h = createHash('md5').update(text, 'utf8').digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * What the scoring statement needs from decision.ts and explanation.ts, computed once per run: each
 * cell's outcome (tier rank, due days, score factor, shape), the tier factors by (base, final tier,
 * critical) and the table rows' decision factors, and each cell's own decision-part id (the part of
 * a cell with no control or vendor status in it follows from the cell).
 */
export function decisionParams(policy: Policy): DecisionParams {
  let params = computed.get(policy);
  if (!params) computed.set(policy, (params = computeDecisionParams(policy)));
  return params;
}

// Once per policy object: a full rescoring's shares and a run's steps share it (every cell of the
// policy is decided and hashed: 0.2-0.4 s at 2048 modifier combinations per base).
const computed = new WeakMap<Policy, ReturnType<typeof computeDecisionParams>>();

function computeDecisionParams(policy: Policy) {
  const cells = cellTable(policy);
  const wording = policyWording(policy);
  // By (base * 4 + final tier rank) * 2 + critical: 20 x 4 x 2 prebuilt tier factors.
  const tierObjs: postgres.JSONValue[] = [];
  for (let b = 0; b < CELL_COUNT / MODIFIER_SPAN; b++) {
    const row = tableRow(policy, b);
    const tableTier = row ? row.tier : TIER_BY_RANK[Math.min(b - SEVERITY_BASE, 3)]!;
    for (const tier of TIER_BY_RANK) {
      for (const critical of [false, true]) tierObjs.push(tierFactor(policy, b, { tier, tableTier, dueDays: dueDaysOf(policy, b, tier, critical) }, critical) as unknown as postgres.JSONValue);
    }
  }
  // A part is a function of its cell (and the control, validation evidence or vendor status in it): keyed by both.
  const cellPartIds = cells.shape.map((_, k) => md5Uuid(`${wording.digest}|${k}||||`));
  // The score line's tail per cell (the factors that lowered it): read once per distinct part, never per finding.
  const factorTexts = cells.scoreFactor.map(scoreFactorText);
  return { cells, wording, exposedWeight: policy.document.score.weights.publiclyExposed, tierObjs: jsonbArray(tierObjs), decisionObjs: jsonbArray(wording.decisions), cellPartIds, factorTexts };
}

export type DecisionParams = ReturnType<typeof computeDecisionParams>;

/**
 * The decision's part of an explanation (explanation.ts DecisionPart), in SQL, from the values its
 * key is made of: the cell (its exposure bit and score factor word the score line), the cell's base (the table row; absent without a KEV catalog, where the
 * vulnerability's part says why), final tier rank, critical asset and shape, the control that made
 * it unexposed, the not-exploitable control, the validation evidence and the vendor status.
 */
export function decisionPartSql(
  tx: Tx,
  p: DecisionParams,
  k: Fragment, b: Fragment, ft: Fragment, critical: Fragment, shape: Fragment, unexposedBy: Fragment, control: Fragment, validation: Fragment, vendor: Fragment,
): Fragment {
  return tx`(
    jsonb_build_object('tier', (${p.tierObjs}::jsonb[])[(${b} * 4 + ${ft}) * 2 + ${critical}::int + 1],
      'likely', ${shape} & 1 = 1, 'poc', ${shape} & 32 = 32, 'runtime', ${shape} & 2 = 2, 'nonprod', ${shape} & 4 = 4, 'critical', ${critical},
      'runtimeEffect', ${p.wording.runtimeEffect}::text, 'scoreSource', ${p.wording.source}::text,
      'scoreExposed', case when ${k} & 128 = 128 and ${p.exposedWeight}::float8 > 0 then ${p.wording.scoreExposed}::text else '' end,
      'scoreFactor', (${p.factorTexts}::text[])[${k} + 1])
    || case when ${b} < 16 then jsonb_build_object('decision', (${p.decisionObjs}::jsonb[])[${b} + 1]) else '{}' end
    || case when ${unexposedBy} is not null then jsonb_build_object('unexposedBy', ${unexposedBy}) else '{}' end
    || case when ${control} is not null then jsonb_build_object('control', ${control}) else '{}' end
    || case when ${validation} is not null then jsonb_build_object('validation', ${validation}) else '{}' end
    || case when ${vendor} is not null then jsonb_build_object('vendor', ${tx.json(p.wording.vendors as unknown as postgres.JSONValue)}::jsonb -> ${vendor}) else '{}' end)`;
}

/**
 * A finding's decision-part id: its cell's own, or (with a control, validation evidence or vendor
 * status in it) a hash of everything the part says, as the cell's own is hashed in TypeScript.
 */
export function decisionPartId(tx: Tx, p: DecisionParams, key: Fragment, unexposedBy: Fragment, control: Fragment, validation: Fragment, vendor: Fragment): Fragment {
  return tx`case when ${unexposedBy} is null and ${control} is null and ${validation} is null and ${vendor} is null
                 then (${p.cellPartIds}::uuid[])[${key} + 1]
                 else md5(concat_ws('|', ${p.wording.digest}::text, ${key},
                                    coalesce(${unexposedBy}::text, ''), coalesce(${control}::text, ''), coalesce(${validation}::text, ''), coalesce(${vendor}, '')))::uuid end`;
}
