// How the metric pages write numbers: counts with separators, durations in hours or days, money
// compact (the CMDB's currency is not recorded, so no symbol is guessed).

const counts = new Intl.NumberFormat('en-US');
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

export const count = (n: number | null | undefined) => (n === null || n === undefined ? '–' : counts.format(n));

export const money = (n: number | null | undefined) => (n === null || n === undefined ? '–' : compact.format(n));

/** Hours below two days, days above. */
export function hoursOrDays(hours: number | null | undefined): string {
  if (hours === null || hours === undefined) return '–';
  if (hours < 48) return `${hours < 10 ? hours.toFixed(1) : Math.round(hours)} h`;
  const days = hours / 24;
  return `${days < 10 ? days.toFixed(1) : Math.round(days)} d`;
}

export const days = (d: number | null | undefined) => (d === null || d === undefined ? '–' : `${d < 10 ? d.toFixed(1) : Math.round(d)} d`);

/** The snapshot's time, to the minute, UTC. */
export const instant = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
