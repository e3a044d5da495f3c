import { Hono } from 'hono';
import type { FC } from 'hono/jsx';
import type { MttrRow } from '../../metrics/executive.js';
import { executiveView, type ExecutiveView } from '../../metrics/views.js';
import { Chart, Empty, Figure, Section, TierBadge, percent } from '../components.js';
import type { ConsoleEnv } from '../env.js';
import { count, days, hoursOrDays, money } from './metrics-format.js';
import { AppetiteNote, scopedMetricsPage, SnapshotNote } from './overview.js';

// The executive summary: where the exposure sits in the business, the risk trend against the stated
// appetite, how fast the program detects (MTTD) and fixes (MTTR), SLA attainment and who is late.
// Everything comes from the daily snapshots (metrics/), so the page costs the same at any size.

const MttrTable: FC<{ rows: MttrRow[]; label: string; tiers?: boolean; id: string }> = ({ rows, label, tiers, id }) =>
  rows.length ? (
    <table id={id}>
      <thead>
        <tr>
          <th>{label}</th>
          <th class="num">Tickets</th>
          <th class="num">Verified</th>
          <th class="num">MTTR median</th>
          <th class="num">p90</th>
          <th class="num">Fixed in SLA</th>
          <th class="num">Overdue</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr>
            <td>{tiers ? <TierBadge tier={r.key} /> : (r.key ?? <span class="muted">none recorded</span>)}</td>
            <td class="num">{count(r.tickets)}</td>
            <td class="num">{count(r.toVerify.count)}</td>
            <td class="num">{hoursOrDays(r.toVerify.medianHours)}</td>
            <td class="num">{hoursOrDays(r.toVerify.p90Hours)}</td>
            <td class="num">{percent(r.fixedWithinSla)}</td>
            <td class="num">{count(r.overdue)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  ) : (
    <Empty>No golden ticket yet: MTTR counts from the first ticket verified fixed by a later scan.</Empty>
  );

const ExecutivePage: FC<{ view: ExecutiveView }> = ({ view }) => {
  const { business, mttd, mttr, sla, appetite } = view;
  return (
    <>
      <SnapshotNote view={view} path="/console/executive" />
      {view.snapshot ? (
        <div class="figures">
          <Figure
            id="fig-appetite"
            label="Exploitable backlog vs appetite"
            value={`${count(appetite.current)} / ${count(appetite.appetite)}`}
            note={appetite.status === 'above' ? `${count(-appetite.headroom!)} above the appetite` : `${count(appetite.headroom)} to spare`}
          />
          <Figure
            id="fig-revenue"
            label="Revenue at risk (yearly)"
            value={money(business?.revenueAtRisk)}
            note={`${count(business?.servicesAtRisk)} business service${business?.servicesAtRisk === 1 ? '' : 's'} with act/attend exposure`}
          />
          <Figure
            id="fig-mttd"
            label="MTTD from publication"
            value={days(mttd?.fromPublished.medianDays)}
            note={mttd?.fromPublished.count ? `median over ${count(mttd.fromPublished.count)} CVEs · p90 ${days(mttd.fromPublished.p90Days)}` : 'no CVE published since the first scan has been found yet'}
          />
          <Figure
            id="fig-mttd-kev"
            label="MTTD from KEV listing"
            value={days(mttd?.fromKevAdded.medianDays)}
            note={mttd?.fromKevAdded.count ? `median over ${count(mttd.fromKevAdded.count)} CVEs` : 'no CVE listed in KEV since the first scan has been found yet'}
          />
          <Figure
            id="fig-mttr"
            label="MTTR (detected → verified)"
            value={hoursOrDays(mttr?.total.medianHours)}
            note={mttr?.total.count ? `median over ${count(mttr.total.count)} verified tickets · p90 ${hoursOrDays(mttr.total.p90Hours)}` : 'no ticket verified fixed by a later scan yet'}
          />
          <Figure
            id="fig-sla"
            label="SLA attainment"
            value={percent(sla?.fixed.share ?? null)}
            note={sla?.fixed.due ? `${count(sla.fixed.met)} of ${count(sla.fixed.due)} fixed in time · acknowledged in time ${percent(sla.acknowledged.share)}` : 'no ticket has reached its due date yet'}
          />
        </div>
      ) : null}
      <AppetiteNote appetite={appetite} />
      <Section title="Risk trend against the appetite, last 12 months" id="risk-trend">
        {view.trend.length > 1 ? (
          <Chart
            label="Open act + attend exposures per day against the stated risk appetite"
            spec={{
              type: 'line',
              labels: view.trend.map((p) => p.day),
              datasets: [
                { label: 'Act', data: view.trend.map((p) => p.act), color: '#b71c1c' },
                { label: 'Act + attend', data: view.trend.map((p) => p.actAttend), color: '#ef6c00' },
              ],
              threshold: { label: `Risk appetite (${appetite.appetite})`, value: appetite.appetite },
            }}
            height={260}
          />
        ) : (
          <Empty>
            {view.trend.length ? `One day recorded so far (${view.trend[0]!.day}): the trend draws from the second daily snapshot.` : 'No trend yet: each daily snapshot adds a point.'}
          </Empty>
        )}
      </Section>
      <Section title="Exposure by business service" id="services">
        {business?.services.length ? (
          <>
            <table>
              <thead>
                <tr>
                  <th>Business service</th>
                  <th class="num">Yearly revenue</th>
                  <th class="num">Act + attend</th>
                  <th class="num">Act</th>
                  <th class="num">In KEV</th>
                  <th class="num">Internet-facing</th>
                  <th class="num">Assets affected</th>
                </tr>
              </thead>
              <tbody>
                {business.services.map((s) => (
                  <tr>
                    <td>{s.name}</td>
                    <td class="num">{money(s.annualRevenue)}</td>
                    <td class="num">{count(s.urgent)}</td>
                    <td class="num">{count(s.act)}</td>
                    <td class="num">{count(s.kev)}</td>
                    <td class="num">{count(s.internetFacing)}</td>
                    <td class="num">{count(s.assets)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {business.unmappedUrgent ? (
              <p class="muted">{count(business.unmappedUrgent)} act/attend exposures sit on assets no business service claims: map them in the CMDB to see their business impact.</p>
            ) : null}
          </>
        ) : (
          <Empty>No open exposure is mapped to a business service: import a CMDB or context file that names each asset's business service and its revenue.</Empty>
        )}
      </Section>
      <div class="grid">
        <Section title="Top owners by overdue tickets" id="overdue-owners">
          {view.topOverdueOwners.length ? (
            <table>
              <thead>
                <tr><th>Owner</th><th class="num">Overdue</th><th class="num">Unacknowledged</th><th class="num">Open</th></tr>
              </thead>
              <tbody>
                {view.topOverdueOwners.map((o) => (
                  <tr>
                    <td>{o.owner ?? <span class="muted">no owner</span>}</td>
                    <td class="num">{count(o.overdue)}</td>
                    <td class="num">{count(o.unacknowledgedOverdue)}</td>
                    <td class="num">{count(o.open)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No golden ticket is past its due date.</Empty>
          )}
        </Section>
        <Section title="MTTR by tier" id="mttr-tier">
          <MttrTable rows={mttr?.byTier ?? []} label="Tier" tiers id="mttr-by-tier" />
        </Section>
      </div>
      <Section title="MTTR by owner" id="mttr-owner">
        <MttrTable rows={mttr?.byOwner ?? []} label="Owner" id="mttr-by-owner" />
      </Section>
      <Section title="MTTR by business service" id="mttr-service">
        <MttrTable rows={mttr?.byBusinessService ?? []} label="Business service" id="mttr-by-service" />
      </Section>
      <p class="muted">
        MTTD: from a CVE's publication (or its addition to CISA KEV) to its first finding in the estate, for CVEs published since the first scan. MTTR: from detection
        (a finding became act/attend) to the fix verified by a later scan. Risk appetite: CTEM_RISK_APPETITE open act + attend exposures.
      </p>
    </>
  );
};

export const executivePage = new Hono<ConsoleEnv>();

executivePage.get('/console/executive', (c) =>
  scopedMetricsPage(c, { title: 'Executive summary', path: '/console/executive' }, async (scope, sql, appetite) => (
    <ExecutivePage view={await executiveView(sql, { scope, riskAppetite: appetite })} />
  )),
);
