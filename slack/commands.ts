import { ScopeSelector } from '../scoping/scopes.js';

// The `/ctem` command language. Parsing is pure, so every phrase is checked without Slack; anything
// that does not parse becomes help (with what was not understood), never an error.

export type Command =
  | { kind: 'help'; problem?: string }
  | { kind: 'scopes' }
  | { kind: 'scope-create'; name: string; selector: ScopeSelector; description?: string }
  | { kind: 'campaign-start'; scope: string; hypothesis?: string }
  | { kind: 'validate'; scope: string }
  | { kind: 'status'; ref: string }
  | { kind: 'top'; scope?: string }
  | { kind: 'mine' }
  | { kind: 'orphans' };

const SCOPE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export const HELP: Array<[usage: string, what: string]> = [
  ['/ctem help', 'this help'],
  ['/ctem scopes', 'saved scopes'],
  ['/ctem scope create <name> service=<s> env=<e> owner=<o> kind=<k> criticality=<c> internet=<true|false> prefix=<p> ["description"]', 'save a scope (comma-separate several values)'],
  ['/ctem campaign start <scope> [hypothesis]', 'discover and prioritize a scope now; the results are posted here'],
  ['/ctem validate <scope | estate>', 'validate a scope now: attack paths to crown jewels, safe checks of allow-listed targets, compensating controls; the results are posted here'],
  ['/ctem status <campaign id | ticket key | INC number>', 'where a campaign or a golden ticket stands'],
  ['/ctem top [scope]', 'the most urgent exposures, and why'],
  ['/ctem mine', 'your open golden tickets'],
  ['/ctem orphans', 'assets nobody owns (the latest orphan report)'],
];

/** Splits on spaces, keeping "quoted text" together. */
function words(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

const SELECTOR_KEYS: Record<string, keyof ScopeSelector> = {
  service: 'businessServices', services: 'businessServices', business_service: 'businessServices',
  env: 'environments', envs: 'environments', environment: 'environments',
  owner: 'owners', owners: 'owners',
  kind: 'assetKinds', kinds: 'assetKinds',
  criticality: 'criticalities', criticalities: 'criticalities',
  internet: 'internetFacing', internet_facing: 'internetFacing',
  prefix: 'assetNamePrefix', name: 'assetNamePrefix',
};

function parseScopeCreate(args: string[]): Command {
  const [name, ...rest] = args;
  if (!name || !SCOPE_NAME.test(name)) return { kind: 'help', problem: 'a scope needs a name of letters, digits, dots, dashes or underscores (at most 64)' };
  const raw: Record<string, unknown> = {};
  const description: string[] = [];
  for (const word of rest) {
    const eq = word.indexOf('=');
    if (eq <= 0) {
      description.push(word);
      continue;
    }
    const key = SELECTOR_KEYS[word.slice(0, eq).toLowerCase()];
    const value = word.slice(eq + 1);
    if (!key) return { kind: 'help', problem: `unknown scope field ${word.slice(0, eq)}` };
    if (key === 'internetFacing') raw[key] = value === 'true' ? true : value === 'false' ? false : value;
    else if (key === 'assetNamePrefix') raw[key] = value;
    else raw[key] = value.split(',').map((v) => v.trim()).filter(Boolean);
  }
  const selector = ScopeSelector.safeParse(raw);
  if (!selector.success) {
    const issue = selector.error.issues[0]!;
    return { kind: 'help', problem: `scope ${issue.path.join('.')}: ${issue.message}` };
  }
  return { kind: 'scope-create', name, selector: selector.data, ...(description.length ? { description: description.join(' ') } : {}) };
}

export function parseCommand(text: string): Command {
  const all = words(text.trim());
  const [verb, ...args] = all.map((w, i) => (i < 2 ? w.toLowerCase() : w));
  switch (verb) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'scopes':
      return { kind: 'scopes' };
    case 'scope':
      if (args[0] === 'create') return parseScopeCreate(all.slice(2));
      if (args[0] === 'list' || args.length === 0) return { kind: 'scopes' };
      return { kind: 'help', problem: `unknown scope action ${args[0]}` };
    case 'campaign': {
      if (args[0] !== 'start') return { kind: 'help', problem: 'campaigns are started with `campaign start <scope> [hypothesis]`' };
      const scope = all[2];
      if (!scope || !SCOPE_NAME.test(scope)) return { kind: 'help', problem: 'which scope? `campaign start <scope> [hypothesis]`' };
      const hypothesis = all.slice(3).join(' ').trim();
      return { kind: 'campaign-start', scope, ...(hypothesis ? { hypothesis: hypothesis.slice(0, 500) } : {}) };
    }
    case 'validate': {
      const scope = all[1];
      if (!scope || !SCOPE_NAME.test(scope)) return { kind: 'help', problem: 'which scope? `validate <scope>` (or `validate estate` for everything)' };
      return { kind: 'validate', scope };
    }
    case 'status':
      return all[1] ? { kind: 'status', ref: all[1] } : { kind: 'help', problem: 'status of what? a campaign id, a ticket key or an INC number' };
    case 'top':
      if (all[1] && !SCOPE_NAME.test(all[1])) return { kind: 'help', problem: `${all[1]} is not a scope name` };
      return all[1] ? { kind: 'top', scope: all[1] } : { kind: 'top' };
    case 'mine':
      return { kind: 'mine' };
    case 'orphans':
      return { kind: 'orphans' };
    default:
      return { kind: 'help', problem: `I do not know \`${all.join(' ').slice(0, 100)}\`` };
  }
}
