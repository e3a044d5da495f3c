// The rules a risk acceptance must meet, in one place. The remediation workflow's Update validator
// applies them (against workflow time) and is the authority; the API passes its refusal on as a
// 422 naming the field, and the Slack modal checks the fields it asks for with the same rules
// before a request goes to security operations. Pure: it runs inside the workflow sandbox too.

export const MAX_RISK_ACCEPTANCE_DAYS = 365;
export const MIN_REASON_LENGTH = 10;
const DAY_MS = 86_400_000;

export interface RiskAcceptanceDraft {
  requester?: unknown;
  approver?: unknown;
  reason?: unknown;
  expiresAt?: unknown;
}

export type RiskAcceptanceField = 'requester' | 'approver' | 'reason' | 'expiresAt';

/** Why a risk acceptance is refused, and which field is wrong. */
export interface RiskAcceptanceRefusal {
  field: RiskAcceptanceField;
  message: string;
}

const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

/**
 * The first rule the draft breaks, or undefined. `now` is the caller's clock (workflow time in the
 * workflow); `fields` limits the check to what the caller knows (a request has no approver yet).
 */
export function riskAcceptanceRefusal(
  draft: RiskAcceptanceDraft,
  now: number,
  fields: readonly RiskAcceptanceField[] = ['requester', 'approver', 'reason', 'expiresAt'],
): RiskAcceptanceRefusal | undefined {
  const checks = new Set(fields);
  if (checks.has('requester') && !text(draft?.requester)) return { field: 'requester', message: 'The requester is required.' };
  if (checks.has('approver') && !text(draft?.approver)) return { field: 'approver', message: 'The approver is required.' };
  if (checks.has('reason') && text(draft?.reason).length < MIN_REASON_LENGTH) {
    return { field: 'reason', message: `Say why the risk is accepted, in ${MIN_REASON_LENGTH} characters or more.` };
  }
  if (checks.has('expiresAt')) {
    const expires = typeof draft?.expiresAt === 'string' ? Date.parse(draft.expiresAt) : NaN;
    if (Number.isNaN(expires)) return { field: 'expiresAt', message: 'The expiry must be an ISO date-time.' };
    if (expires <= now) return { field: 'expiresAt', message: 'The expiry must be in the future.' };
    if (expires > now + MAX_RISK_ACCEPTANCE_DAYS * DAY_MS) {
      return { field: 'expiresAt', message: `A risk acceptance lasts ${MAX_RISK_ACCEPTANCE_DAYS} days at most.` };
    }
  }
  if (checks.has('approver') && checks.has('requester') && text(draft.approver).toLowerCase() === text(draft.requester).toLowerCase()) {
    return { field: 'approver', message: 'The approver must be someone other than the requester.' };
  }
  return undefined;
}
