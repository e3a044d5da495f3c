import { parseArgs } from 'node:util';
import type { Config } from '../../config/index.js';
import { apiFailure, callApi, platformApi } from './platform-api.js';

// `ctem identities create|list|show|disable|enable|token issue|token list|token revoke`: users,
// service accounts and their API tokens, through the running platform (an administrator's token).

const USAGE = `usage: ctem identities list [--json]
       ctem identities create NAME --role ROLE [--role ROLE...] [--service] [--email E] [--display-name N]
                              [--password-stdin: read a console password from standard input] [--json]
       ctem identities show NAME|ID [--json]
       ctem identities disable|enable NAME|ID
       ctem identities token issue NAME|ID --name WHAT [--expires ISO-DATE] [--json]   (prints the token once)
       ctem identities token list NAME|ID [--json]
       ctem identities token revoke NAME|ID TOKEN-ID`;

type Identity = { id: string; kind: string; name: string; email: string | null; roles: string[]; disabledAt: string | null };
type Token = { id: string; name: string; prefix: string; expiresAt: string; revokedAt: string | null; lastUsedAt: string | null; token?: string };

function usage(message?: string): number {
  console.error(message ? `${message}\n${USAGE}` : USAGE);
  return 2;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const line = (i: Identity) => `${i.name.padEnd(24)} ${i.kind.padEnd(8)} ${i.roles.join(',').padEnd(20)} ${i.email ?? '-'}${i.disabledAt ? `  disabled ${i.disabledAt.slice(0, 10)}` : ''}  ${i.id}`;

export async function identitiesCommand(config: Config, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      role: { type: 'string', multiple: true },
      service: { type: 'boolean', default: false },
      email: { type: 'string' },
      'display-name': { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
      name: { type: 'string' },
      expires: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return (console.log(USAGE), 0);
  const api = platformApi(config);
  const json = values.json === true;
  const out = (body: unknown, text: () => string) => (console.log(json ? JSON.stringify(body, null, 2) : text()), 0);
  const post = (path: string, body: unknown, method = 'POST') => callApi(api, path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  // A name or an id: names are looked up in the list (identities are few).
  async function resolve(ref: string | undefined): Promise<Identity | number> {
    if (!ref) return usage('name or id of the identity is missing');
    const r = await callApi(api, '/api/v1/identities');
    if (!r.ok) return apiFailure('listing identities', r);
    const found = (r.body as { items: Identity[] }).items.find((i) => i.id === ref || i.name === ref);
    if (!found) {
      console.error(`no identity named ${ref}`);
      return 1;
    }
    return found;
  }

  const [verb, ...rest] = positionals;
  if (verb === 'list') {
    const r = await callApi(api, '/api/v1/identities');
    if (!r.ok) return apiFailure('ctem identities list', r);
    const items = (r.body as { items: Identity[] }).items;
    return out(r.body, () => (items.length ? items.map(line).join('\n') : 'no identities yet (CTEM_API_TOKEN is the only way in)'));
  }
  if (verb === 'create') {
    const [name] = rest;
    if (!name) return usage('ctem identities create: the name is missing');
    if (!values.role?.length) return usage('ctem identities create: at least one --role is required');
    const body = {
      kind: values.service ? 'service' : 'user',
      name,
      roles: values.role,
      ...(values.email ? { email: values.email } : {}),
      ...(values['display-name'] ? { displayName: values['display-name'] } : {}),
      ...(values['password-stdin'] ? { password: await readStdin() } : {}),
    };
    const r = await post('/api/v1/identities', body);
    if (!r.ok) return apiFailure(`ctem identities create ${name}`, r);
    return out(r.body, () => `created ${line(r.body as Identity)}`);
  }
  if (verb === 'show' || verb === 'disable' || verb === 'enable') {
    const identity = await resolve(rest[0]);
    if (typeof identity === 'number') return identity;
    if (verb === 'show') return out(identity, () => line(identity));
    const r = await post(`/api/v1/identities/${identity.id}`, { disabled: verb === 'disable' }, 'PATCH');
    if (!r.ok) return apiFailure(`ctem identities ${verb} ${identity.name}`, r);
    return out(r.body, () => `${verb}d ${line(r.body as Identity)}`);
  }
  if (verb === 'token') {
    const [action, ref, tokenId] = rest;
    const identity = await resolve(ref);
    if (typeof identity === 'number') return identity;
    if (action === 'issue') {
      if (!values.name) return usage('ctem identities token issue: --name (what the token is for) is required');
      const r = await post(`/api/v1/identities/${identity.id}/tokens`, { name: values.name, ...(values.expires ? { expiresAt: values.expires } : {}) });
      if (!r.ok) return apiFailure(`ctem identities token issue ${identity.name}`, r);
      const t = r.body as Token;
      return out(t, () => `${t.token}\n(token ${t.id} for ${identity.name}, expires ${t.expiresAt}; shown this once: store it now)`);
    }
    if (action === 'list') {
      const r = await callApi(api, `/api/v1/identities/${identity.id}/tokens`);
      if (!r.ok) return apiFailure(`ctem identities token list ${identity.name}`, r);
      const items = (r.body as { items: Token[] }).items;
      return out(r.body, () =>
        items.map((t) => `${t.prefix}…  ${t.name.padEnd(20)} expires ${t.expiresAt.slice(0, 10)}  last used ${t.lastUsedAt?.slice(0, 16) ?? 'never'}${t.revokedAt ? '  revoked' : ''}  ${t.id}`).join('\n') || 'no tokens',
      );
    }
    if (action === 'revoke') {
      if (!tokenId) return usage('ctem identities token revoke: the token id is missing');
      const r = await callApi(api, `/api/v1/identities/${identity.id}/tokens/${encodeURIComponent(tokenId)}`, { method: 'DELETE' });
      if (!r.ok) return apiFailure(`ctem identities token revoke ${tokenId}`, r);
      return out(r.body, () => `revoked ${(r.body as Token).prefix}… (${(r.body as Token).name})`);
    }
    return usage();
  }
  return usage();
}
