import type { Child, FC } from 'hono/jsx';

// Small pieces the pages share: tier badges, figures, charts, tables and keyset paging.

export const TierBadge: FC<{ tier: string | null }> = ({ tier }) => <span class={`tier tier-${(tier ?? 'none').replace('*', 'star')}`}>{tier ?? 'unscored'}</span>;

/** A headline figure with its label and an optional note (a trend, a share). */
export const Figure: FC<{ label: string; value: string | number | null; note?: string; id?: string }> = ({ label, value, note, id }) => (
  <div class="figure" id={id}>
    <div class="value">{value ?? '–'}</div>
    <div class="label">{label}</div>
    {note ? <div class="note">{note}</div> : null}
  </div>
);

export interface ChartSpec {
  type: 'line' | 'bar' | 'doughnut';
  labels: string[];
  datasets: Array<{ label: string; data: Array<number | null>; color?: string }>;
  /** A horizontal line to compare against (a risk appetite). */
  threshold?: { label: string; value: number };
  stacked?: boolean;
}

/** A chart drawn in the browser by Chart.js (served from the platform, no CDN); the data travels in the page. */
export const Chart: FC<{ spec: ChartSpec; label: string; height?: number }> = ({ spec, label, height = 220 }) => (
  <figure class="chart" style={`height:${height}px`}>
    <canvas role="img" aria-label={label} data-chart={JSON.stringify(spec)}></canvas>
  </figure>
);

export const Section: FC<{ title: string; children?: Child; id?: string }> = ({ title, children, id }) => (
  <section class="panel" id={id}>
    <h2>{title}</h2>
    {children}
  </section>
);

/** "Next page" for keyset-paginated lists: the cursor of the last row, carried with the current filters. */
export const Pager: FC<{ path: string; params: Record<string, string | undefined>; next: string | null }> = ({ path, params, next }) => {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '' && k !== 'after') query.set(k, v);
  // The first page keeps the filters; only the cursor goes.
  const first = query.size ? `${path}?${query}` : path;
  const paged = Boolean(params.after);
  if (!next) return <nav class="pager">{paged ? <a href={first}>First page</a> : null} <span class="muted">End of list</span></nav>;
  query.set('after', next);
  return (
    <nav class="pager">
      {paged ? <a href={first}>First page</a> : null} <a href={`${path}?${query}`} rel="next">Next page</a>
    </nav>
  );
};

export const Empty: FC<{ children?: Child }> = ({ children }) => <p class="empty">{children}</p>;

export const dateOnly = (iso: string | null | undefined) => (iso ? iso.slice(0, 10) : '–');
export const percent = (share: number | null | undefined, digits = 0) => (share === null || share === undefined ? '–' : `${(share * 100).toFixed(digits)}%`);
