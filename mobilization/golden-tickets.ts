// A golden ticket is one remediation action (mobilization/actions.ts names it by its key); its
// remediation workflow's id is derived from that key, so the Temporal UI finds it by the ticket.

export const remediationWorkflowId = (key: string) => `remediation:${key}`;
