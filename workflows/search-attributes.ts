import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// Custom search attributes, so admins can filter runs in the Temporal Web UI
// (e.g. `CtemTier = "act" AND CtemEscalationLevel > 0`). Registered idempotently at start.
export const CTEM_PHASE = defineSearchAttributeKey('CtemPhase', SearchAttributeType.KEYWORD);
export const CTEM_TIER = defineSearchAttributeKey('CtemTier', SearchAttributeType.KEYWORD);
export const CTEM_OWNER = defineSearchAttributeKey('CtemOwner', SearchAttributeType.KEYWORD);
export const CTEM_ESCALATION_LEVEL = defineSearchAttributeKey('CtemEscalationLevel', SearchAttributeType.INT);
export const CTEM_SLA_DEADLINE = defineSearchAttributeKey('CtemSlaDeadline', SearchAttributeType.DATETIME);
/** The highest level a ticket was ever escalated to: unlike CtemEscalationLevel, kept after acknowledgement (`CtemEscalationPeak > 0`). */
export const CTEM_ESCALATION_PEAK = defineSearchAttributeKey('CtemEscalationPeak', SearchAttributeType.INT);

export const SEARCH_ATTRIBUTE_KEYS = [CTEM_PHASE, CTEM_TIER, CTEM_OWNER, CTEM_ESCALATION_LEVEL, CTEM_SLA_DEADLINE, CTEM_ESCALATION_PEAK] as const;
