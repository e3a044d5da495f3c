import type { Sql } from '../db/client.js';

// Validation of the response, as far as it goes today: a remediation action is feasible when a fix
// exists (the scanner named a fixed version) and someone owns the asset. Mobilization asks these
// questions when it plans golden tickets; a finding that fails the first stays on the exposure
// list, a ticket that fails the second is opened as orphaned (mobilization/plan.ts).

/** SQL predicate over `findings f`: the finding names a version that fixes it. */
export const fixAvailable = (sql: Sql) => sql`f.fixed_version is not null`;

