import { Hono } from 'hono';
import type { Child, FC } from 'hono/jsx';
import { Empty, Section } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { Page } from '../layout.js';

// The API reference: the OpenAPI document the API serves (built in-process, the same object as
// /api/v1/openapi.json), grouped by resource, each operation with its parameters, request body and
// responses, and the named schemas with their fields. Readable without a separate viewer.

type Schema = {
  $ref?: string;
  type?: string | string[];
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  required?: string[];
  description?: string;
  default?: unknown;
  format?: string;
  deprecated?: boolean;
  const?: unknown;
};
type Parameter = { name: string; in: string; required?: boolean; description?: string; schema?: Schema; deprecated?: boolean };
type Content = Record<string, { schema?: Schema }>;
type Operation = {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Content; description?: string };
  responses?: Record<string, { description?: string; content?: Content }>;
};
type Document = { info?: { title?: string; version?: string }; paths?: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema> } };

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

/** Descriptions mark names with backticks, as Markdown does: shown as code. */
const Prose: FC<{ text: string | undefined }> = ({ text }) => <>{(text ?? '').split('`').map((part, i) => (i % 2 ? <code>{part}</code> : part))}</>;
const refName = (ref: string) => ref.split('/').at(-1)!;

/** A schema in a few words, with links to named schemas. */
const TypeOf: FC<{ schema: Schema | undefined }> = ({ schema }): Child => {
  if (!schema) return <span class="muted">any</span>;
  if (schema.$ref) return <a href={`#schema-${refName(schema.$ref)}`}>{refName(schema.$ref)}</a>;
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return <>{alternatives.map((s, i) => <>{i ? ' or ' : ''}<TypeOf schema={s} /></>)}</>;
  if (schema.allOf) return <>{schema.allOf.map((s, i) => <>{i ? ' and ' : ''}<TypeOf schema={s} /></>)}</>;
  if (schema.enum) return <>one of {schema.enum.map((v) => <code>{String(v)}</code>).reduce<Child[]>((acc, el, i) => (i ? [...acc, ', ', el] : [el]), [])}</>;
  if (schema.const !== undefined) return <code>{JSON.stringify(schema.const)}</code>;
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const nullable = types.includes('null');
  const main = types.filter((t) => t !== 'null');
  const base =
    main[0] === 'array' ? <>array of <TypeOf schema={schema.items} /></>
    : main[0] === 'object' && schema.properties ? <>object ({Object.keys(schema.properties).join(', ')})</>
    : main[0] === 'object' && typeof schema.additionalProperties === 'object' ? <>map of <TypeOf schema={schema.additionalProperties} /></>
    : <>{main.join(' | ') || 'any'}{schema.format ? ` (${schema.format})` : ''}</>;
  return <>{base}{nullable ? ' or null' : ''}</>;
};

const Fields: FC<{ schema: Schema }> = ({ schema }) => (
  <table class="fields">
    <thead><tr><th>Field</th><th>Type</th><th>Description</th></tr></thead>
    <tbody>
      {Object.entries(schema.properties ?? {}).map(([name, s]) => (
        <tr>
          <td><code>{name}</code>{schema.required?.includes(name) ? '' : <span class="muted"> optional</span>}</td>
          <td><TypeOf schema={s} /></td>
          <td><Prose text={s.description} /></td>
        </tr>
      ))}
    </tbody>
  </table>
);

/** A body: a named schema links to its fields below; an inline object lists its fields here. */
const Body: FC<{ content: Content | undefined }> = ({ content }) => {
  if (!content) return <span class="muted">no body</span>;
  return (
    <>
      {Object.entries(content).map(([type, { schema }]) => (
        <div>
          <span class="muted">{type}: </span><TypeOf schema={schema} />
          {schema && !schema.$ref && schema.properties ? <Fields schema={schema} /> : null}
        </div>
      ))}
    </>
  );
};

const OperationView: FC<{ method: string; path: string; op: Operation }> = ({ method, path, op }) => (
  <article class="operation" id={`${method}-${path}`}>
    <h3><span class={`method method-${method}`}>{method.toUpperCase()}</span> <code>{path}</code></h3>
    {op.summary ? <p><Prose text={op.summary} /></p> : null}
    {op.description ? <p class="muted"><Prose text={op.description} /></p> : null}
    {op.parameters?.length ? (
      <table>
        <thead><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr></thead>
        <tbody>
          {op.parameters.map((p) => (
            <tr>
              <td><code>{p.name}</code>{p.required ? <strong> required</strong> : ''}{p.deprecated || p.schema?.deprecated ? <span class="muted"> deprecated</span> : ''}</td>
              <td>{p.in}</td>
              <td><TypeOf schema={p.schema} />{p.schema?.default !== undefined ? <span class="muted"> (default {JSON.stringify(p.schema.default)})</span> : null}</td>
              <td><Prose text={p.description ?? p.schema?.description} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    ) : null}
    {op.requestBody ? <p><strong>Request body{op.requestBody.required ? '' : ' (optional)'}:</strong> <Body content={op.requestBody.content} /></p> : null}
    <table>
      <thead><tr><th>Status</th><th>Meaning</th><th>Body</th></tr></thead>
      <tbody>
        {Object.entries(op.responses ?? {}).map(([status, r]) => (
          <tr><td class="num">{status}</td><td><Prose text={r.description} /></td><td><Body content={r.content} /></td></tr>
        ))}
      </tbody>
    </table>
  </article>
);

/** Operations grouped by their first tag, else by the resource after /api/v1/. */
function groups(doc: Document): Array<[string, Array<{ method: string; path: string; op: Operation }>]> {
  const byGroup = new Map<string, Array<{ method: string; path: string; op: Operation }>>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const group = op.tags?.[0] ?? path.replace(/^\/api\/v1\//, '').split('/')[0] ?? path;
      byGroup.set(group, [...(byGroup.get(group) ?? []), { method, path, op }]);
    }
  }
  return [...byGroup.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export const apiPages = new Hono<ConsoleEnv>().get('/console/api', (c) => {
  const make = c.get('deps').openApiDocument;
  const doc = (make ? make() : {}) as Document;
  const grouped = groups(doc);
  const schemas = Object.entries(doc.components?.schemas ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return c.html(
    <Page title="API reference" active="/console/api" viewer={c.get('viewer')}>
      <section class="panel">
        <p>
          {doc.info?.title ?? 'API'} version {doc.info?.version ?? '–'}. Every call takes the API token as <code>Authorization: Bearer …</code>. The machine-readable
          document is <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (with the token). Lists page with <code>after</code> (the previous page's <code>next</code>) and
          answer an <code>estimate</code> of their size.
        </p>
        <nav class="toc">
          {grouped.map(([g, ops]) => <a href={`#group-${g}`}>{g} ({ops.length})</a>)}
          <a href="#schemas">schemas</a>
        </nav>
      </section>
      {grouped.length ? null : <Empty>No OpenAPI document available.</Empty>}
      {grouped.map(([g, ops]) => (
        <Section title={g} id={`group-${g}`}>
          {ops.map((o) => <OperationView method={o.method} path={o.path} op={o.op} />)}
        </Section>
      ))}
      <Section title="Schemas" id="schemas">
        {schemas.map(([name, s]) => (
          <article class="schema" id={`schema-${name}`}>
            <h3>{name}</h3>
            {s.description ? <p><Prose text={s.description} /></p> : null}
            {s.properties ? <Fields schema={s} /> : <p><TypeOf schema={s} /></p>}
          </article>
        ))}
      </Section>
    </Page>,
  );
});
