import { readFileSync } from 'node:fs';

// Who manages whom, for ITSMs without an org chart (Jira). A JSON array or a CSV file with the
// columns user, email, name, manager, active; `manager` names another row's user.

export interface DirectoryPerson {
  /** The platform's name for the person (asset owners are given as this or the e-mail). */
  user: string;
  email?: string;
  name: string;
  /** `user` of the manager. */
  manager?: string;
  active: boolean;
}

/** Who is who and who manages whom: the people file, or ServiceNow's sys_user when ServiceNow is there too. */
export interface People {
  /** By user or e-mail, case-insensitively. */
  find(userOrEmail: string): Promise<DirectoryPerson | undefined>;
  /** The person first, then the manager, the manager's manager... */
  chain(userOrEmail: string): Promise<DirectoryPerson[]>;
}

export class PeopleDirectoryError extends Error {
  override name = 'PeopleDirectoryError';
}

const MAX_CHAIN = 20;

export class PeopleDirectory implements People {
  private readonly byUser = new Map<string, DirectoryPerson>();
  private readonly byEmail = new Map<string, DirectoryPerson>();

  constructor(readonly people: readonly DirectoryPerson[]) {
    for (const p of people) {
      this.byUser.set(p.user.toLowerCase(), p);
      if (p.email) this.byEmail.set(p.email.toLowerCase(), p);
    }
  }

  async find(userOrEmail: string): Promise<DirectoryPerson | undefined> {
    return this.lookup(userOrEmail);
  }

  private lookup(userOrEmail: string): DirectoryPerson | undefined {
    const k = userOrEmail.trim().toLowerCase();
    return this.byUser.get(k) ?? this.byEmail.get(k);
  }

  /** Stops at a cycle or after 20 levels. */
  async chain(userOrEmail: string): Promise<DirectoryPerson[]> {
    const out: DirectoryPerson[] = [];
    const seen = new Set<string>();
    let p = this.lookup(userOrEmail);
    while (p && !seen.has(p.user) && out.length < MAX_CHAIN) {
      out.push(p);
      seen.add(p.user);
      p = p.manager ? this.lookup(p.manager) : undefined;
    }
    return out;
  }
}

const truthy = (v: unknown, where: string): boolean => {
  if (v === undefined || v === null || v === '') return true;
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (['true', 'yes', '1'].includes(s)) return true;
  if (['false', 'no', '0'].includes(s)) return false;
  throw new PeopleDirectoryError(`${where}: active must be true or false, not ${JSON.stringify(v)}`);
};

function person(raw: Record<string, unknown>, where: string): DirectoryPerson {
  const text = (k: string) => (raw[k] === undefined || raw[k] === null ? '' : String(raw[k]).trim());
  const user = text('user');
  if (!user) throw new PeopleDirectoryError(`${where}: user is required`);
  const email = text('email');
  if (email && !/^[^@\s]+@[^@\s]+$/.test(email)) throw new PeopleDirectoryError(`${where}: email ${JSON.stringify(email)} is not an e-mail address`);
  const manager = text('manager');
  return { user, name: text('name') || user, ...(email ? { email } : {}), ...(manager ? { manager } : {}), active: truthy(raw.active, where) };
}

/** Simple CSV: a header row, comma-separated, double quotes around values holding commas or quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const cells: string[] = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i]!;
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') (cur += '"'), i++;
        else if (ch === '"') quoted = false;
        else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') cells.push(cur), (cur = '');
      else cur += ch;
    }
    cells.push(cur);
    rows.push(cells);
  }
  return rows;
}

/** Parses a people file's text; `name` (the file) is used in errors. */
export function parsePeople(text: string, name: string): DirectoryPerson[] {
  let people: DirectoryPerson[];
  if (/^\s*\[/.test(text)) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new PeopleDirectoryError(`${name}: not valid JSON (${(err as Error).message})`);
    }
    people = (raw as unknown[]).map((r, i) => {
      if (typeof r !== 'object' || r === null) throw new PeopleDirectoryError(`${name}[${i}]: expected an object`);
      return person(r as Record<string, unknown>, `${name}[${i}]`);
    });
  } else {
    const [header, ...rows] = parseCsv(text);
    const cols = (header ?? []).map((h) => h.trim().toLowerCase());
    if (!cols.includes('user')) throw new PeopleDirectoryError(`${name}: the header row must name a user column (user,email,name,manager,active)`);
    people = rows.map((cells, i) => person(Object.fromEntries(cols.map((c, j) => [c, cells[j]])), `${name} line ${i + 2}`));
  }
  const users = new Set<string>();
  for (const p of people) {
    const k = p.user.toLowerCase();
    if (users.has(k)) throw new PeopleDirectoryError(`${name}: user ${p.user} appears twice`);
    users.add(k);
  }
  for (const p of people) {
    if (p.manager && !users.has(p.manager.toLowerCase())) throw new PeopleDirectoryError(`${name}: ${p.user}'s manager ${p.manager} is not in the file`);
  }
  return people;
}

export function loadPeopleFile(file: string): DirectoryPerson[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PeopleDirectoryError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parsePeople(text, file);
}
