/**
 * FHIR date / dateTime / instant values as half-open ranges [low, high) in epoch milliseconds, and date search
 * prefixes with HAPI FHIR's comparison semantics (DatePredicateBuilder): a value's range is its precision
 * (`2023` = the whole year, `2023-11-12T10:15:00+00:00` = one second).
 * Dates without a time, and date-times without an offset, are read as UTC (the server's zone).
 */

export type DateRange = [number, number];

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Parse a FHIR date/dateTime/instant into [low, high) ms, or `undefined` when malformed. */
export function parseFhirDate(text: string): DateRange | undefined {
  const m = DATE_RE.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  if (m[2] === undefined) return [Date.UTC(year, 0, 1), Date.UTC(year + 1, 0, 1)];
  const month = Number(m[2]);
  if (month < 1 || month > 12) return undefined;
  if (m[3] === undefined) return [Date.UTC(year, month - 1, 1), Date.UTC(year, month, 1)];
  const day = Number(m[3]);
  const dayStart = Date.UTC(year, month - 1, day);
  if (day < 1 || new Date(dayStart).getUTCDate() !== day) return undefined;
  if (m[4] === undefined) return [dayStart, dayStart + 86_400_000];
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  if (hour > 23 || minute > 59) return undefined;
  let second = 0;
  let width = 60_000;
  let ms = 0;
  if (m[6] !== undefined) {
    second = Number(m[6]);
    if (second > 59) return undefined;
    width = 1000;
    if (m[7] !== undefined) {
      const frac = m[7];
      if (frac.length <= 3) {
        ms = Number(frac.padEnd(3, '0'));
        width = 10 ** (3 - frac.length);
      } else {
        ms = Math.floor(Number(frac.slice(0, 3)));
        width = 1;
      }
    }
  }
  let offsetMs = 0;
  const tz = m[8];
  if (tz !== undefined && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(4, 6));
    if (oh > 14 || om > 59) return undefined;
    offsetMs = sign * (oh * 60 + om) * 60_000;
  }
  const low = dayStart + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms - offsetMs;
  return [low, low + width];
}

/** The range of a FHIR Period (`start`/`end` optional). */
export function periodRange(period: { start?: string; end?: string } | undefined): DateRange | undefined {
  if (!period || typeof period !== 'object') return undefined;
  const s = typeof period.start === 'string' ? parseFhirDate(period.start) : undefined;
  const e = typeof period.end === 'string' ? parseFhirDate(period.end) : undefined;
  if (!s && !e) return undefined;
  return [s ? s[0] : -Infinity, e ? e[1] : Infinity];
}

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
const PREFIXES = new Set<string>(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

export interface DateCriterion {
  prefix: DatePrefix;
  low: number;
  high: number;
}

/** A time followed by ` hh:mm`: a `+hh:mm` offset whose raw `+` a query string decoded to a space. */
const SPACE_OFFSET = /T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? \d{2}:\d{2}$/;

/**
 * A search value's offset sign restored: in a query string a raw `+` decodes to a space, so
 * `date=ge2023-11-12T10:15:00+00:00` arrives as `ge2023-11-12T10:15:00 00:00`. HAPI FHIR (7.4 and later,
 * `BaseDateTimeDt`) reads a space where the offset sign goes as `+`; so does this server. Only search values.
 */
export function restorePlusOffset(text: string): string {
  return SPACE_OFFSET.test(text) ? `${text.slice(0, -6)}+${text.slice(-5)}` : text;
}

/** Parse a date search value such as `ge2023-11-12T10:15:00+00:00`; `undefined` when malformed. */
export function parseDateCriterion(value: string): DateCriterion | undefined {
  let prefix: DatePrefix = 'eq';
  let text = value;
  if (text.length >= 2 && PREFIXES.has(text.slice(0, 2))) {
    prefix = text.slice(0, 2) as DatePrefix;
    text = text.slice(2);
  }
  const r = parseFhirDate(restorePlusOffset(text));
  if (!r) return undefined;
  return { prefix, low: r[0], high: r[1] };
}

/** Does a resource value range [lo, hi) satisfy the criterion (HAPI semantics, inclusive upper bounds)? */
export function dateMatches(c: DateCriterion, lo: number, hi: number): boolean {
  switch (c.prefix) {
    case 'eq':
      return lo >= c.low && hi <= c.high;
    case 'ne':
      return lo < c.low || hi > c.high;
    case 'lt':
      return lo < c.low;
    case 'le':
      return lo < c.high;
    case 'gt':
      return hi > c.high;
    case 'ge':
      return hi > c.low;
    case 'sa':
      return lo >= c.high;
    case 'eb':
      return hi <= c.low;
    case 'ap': {
      // Approximately: the ranges overlap once the search range is widened by 10% of its distance from now.
      const now = Date.UTC(2023, 10, 13, 10, 15);
      const slack = Math.abs(now - c.low) * 0.1;
      return lo < c.high + slack && hi > c.low - slack;
    }
  }
}
