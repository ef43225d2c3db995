/**
 * Parsing and validation of FHIR search query parameters into a compiled query for the store.
 * Every rejection is a FhirError(400) whose message names the offending parameter (HAPI behaviour).
 */
import { parseDateCriterion, type DateCriterion } from './dates.js';
import { FhirError } from './errors.js';
import { patientIdFromReference } from './extract.js';
import { CONTROL_PARAMS, paramsFor, type ParamDef } from './search-params.js';

export interface TokenValue {
  /** `undefined` = any system; `''` = no system (`|code`). */
  system?: string;
  /** `undefined` = any code (`system|`). */
  code?: string;
}

export type Criterion =
  | { name: string; def: Extract<ParamDef, { kind: 'id' }>; modifier?: string; values: string[] }
  | { name: string; def: Extract<ParamDef, { kind: 'reference' }>; modifier?: string; values: string[] }
  | { name: string; def: Extract<ParamDef, { kind: 'token' }>; modifier?: string; values: TokenValue[] }
  | { name: string; def: Extract<ParamDef, { kind: 'string' }>; modifier?: string; values: string[] }
  | { name: string; def: Extract<ParamDef, { kind: 'date' }>; modifier?: string; values: DateCriterion[] }
  | { name: string; def: ParamDef; modifier: 'missing'; values: boolean[] };

export interface SortKey {
  name: string;
  key: 'date' | 'date2' | 'lastUpdated';
  desc: boolean;
}

export interface ParsedQuery {
  resourceType: string;
  criteria: Criterion[];
  sort: SortKey[];
  /** `_count` when given (0 = total only), capped at MAX_PAGE_SIZE. */
  count?: number;
  /** `_summary=count`. */
  summaryCount: boolean;
  /** `_total`: `accurate` prints the total on every page, `none` never; default (HAPI) only without a next page. */
  totalMode?: 'none' | 'estimate' | 'accurate';
}

/** Upper-case and strip accents: HAPI's normalisation for string search. */
export function normalizeString(s: string): string {
  return s
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .toUpperCase();
}

const MODIFIERS: Record<ParamDef['kind'], string[]> = {
  id: ['missing', 'not'],
  reference: ['missing', 'Patient'],
  token: ['missing', 'not'],
  string: ['missing', 'exact', 'contains'],
  date: ['missing'],
};

/** Split a parameter value on unescaped commas (OR), unescaping `\,` `\|` `\$` `\\`. */
function splitOr(v: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '\\' && i + 1 < v.length) {
      cur += c + v[i + 1];
      i++;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unescape(v: string): string {
  return v.replace(/\\([,|$\\])/g, '$1');
}

function splitToken(raw: string): [string | undefined, string] {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === '\\') {
      i++;
      continue;
    }
    if (raw[i] === '|') return [raw.slice(0, i), raw.slice(i + 1)];
  }
  return [undefined, raw];
}

function bad(msg: string): FhirError {
  return new FhirError(400, msg);
}

/**
 * Largest page this server answers: a larger `_count` gets a page of this many entries and a `next` link (as HAPI
 * does above its `max_page_size`). The MedAgentBench grader asks for 5,000.
 */
export const MAX_PAGE_SIZE = 10_000;

/** A `_count` value: digits only (any length), capped at MAX_PAGE_SIZE. */
export function countParam(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw bad(`Invalid ${name} value: "${v.length > 40 ? `${v.slice(0, 40)}…` : v}" (expected a non-negative integer)`);
  const n = Number(v);
  return Math.min(n, MAX_PAGE_SIZE);
}

/** Parse decoded query pairs for a search on `resourceType`. */
export function parseSearch(resourceType: string, pairs: Array<[string, string]>): ParsedQuery {
  const defs = paramsFor(resourceType);
  const q: ParsedQuery = { resourceType, criteria: [], sort: [], summaryCount: false };
  for (const [rawName, value] of pairs) {
    if (rawName.startsWith('_') && CONTROL_PARAMS.includes(rawName)) {
      applyControl(q, defs, rawName, value);
      continue;
    }
    const colon = rawName.indexOf(':');
    const name = colon < 0 ? rawName : rawName.slice(0, colon);
    const modifier = colon < 0 ? undefined : rawName.slice(colon + 1);
    const def = defs[name];
    if (!def) {
      const valid = Object.keys(defs).sort();
      throw bad(`Unknown search parameter "${name}" for resource type "${resourceType}". Valid search parameters for this search are: [${valid.join(', ')}]`);
    }
    if (modifier !== undefined && !MODIFIERS[def.kind].includes(modifier)) {
      throw bad(`Unsupported modifier ":${modifier}" on search parameter "${name}" (supported: ${MODIFIERS[def.kind].map((m) => ':' + m).join(', ')})`);
    }
    // HAPI ignores parameters with an empty value.
    if (value === '') continue;
    if (modifier === 'missing') {
      if (value !== 'true' && value !== 'false') throw bad(`Invalid value for ${rawName}: "${value}" (expected true or false)`);
      q.criteria.push({ name, def, modifier: 'missing', values: [value === 'true'] });
      continue;
    }
    const parts = splitOr(value);
    switch (def.kind) {
      case 'id':
        q.criteria.push({ name, def, modifier, values: parts.map(unescape) });
        break;
      case 'reference': {
        const ids: string[] = [];
        for (const p of parts) {
          const v = unescape(p);
          if (v === '') continue;
          // `Group/1` etc. can never match a patient reference; keep an impossible id so the AND still applies.
          ids.push(patientIdFromReference(v) ?? '\u0000');
        }
        q.criteria.push({ name, def, modifier, values: ids });
        break;
      }
      case 'token': {
        const toks: TokenValue[] = [];
        for (const p of parts) {
          const [sys, code] = splitToken(p);
          if (sys === undefined) {
            if (code === '') throw bad(`Invalid token value for "${rawName}": "${value}"`);
            toks.push({ code: unescape(code) });
          } else if (code === '') {
            if (sys === '') throw bad(`Invalid token value for "${rawName}": "${value}"`);
            toks.push({ system: unescape(sys) });
          } else toks.push({ system: unescape(sys), code: unescape(code) });
        }
        q.criteria.push({ name, def, modifier, values: toks });
        break;
      }
      case 'string':
        q.criteria.push({
          name,
          def,
          modifier,
          values: parts.map((p) => (modifier === 'exact' ? unescape(p) : normalizeString(unescape(p)))),
        });
        break;
      case 'date': {
        const ds: DateCriterion[] = [];
        for (const p of parts) {
          const c = parseDateCriterion(p);
          if (!c) throw bad(`Invalid date/time format for search parameter "${rawName}": "${p}"`);
          ds.push(c);
        }
        q.criteria.push({ name, def, modifier, values: ds });
        break;
      }
    }
  }
  return q;
}

function applyControl(q: ParsedQuery, defs: Record<string, ParamDef>, name: string, value: string): void {
  switch (name) {
    case '_count':
      q.count = countParam('_count', value);
      return;
    case '_sort': {
      for (const raw of value.split(',')) {
        if (raw === '') continue;
        const desc = raw.startsWith('-');
        const pname = desc ? raw.slice(1) : raw;
        const def = defs[pname];
        if (!def || def.kind !== 'date') {
          const valid = Object.entries(defs)
            .filter(([, d]) => d.kind === 'date')
            .map(([n]) => n)
            .sort();
          throw bad(
            `Unsupported _sort parameter "${pname}" for resource type "${q.resourceType}" (supported: ${valid.join(', ')}, each optionally prefixed with -)`,
          );
        }
        q.sort.push({ name: pname, key: def.key, desc });
      }
      return;
    }
    case '_format':
      // A raw `+` arrives as a space (`application/fhir+json`); HAPI reads it back as `+`.
      if (!['json', 'application/json', 'application/fhir+json', 'application/json+fhir'].includes(value.replace(/ /g, '+'))) {
        throw bad(`Unsupported _format "${value}": this server answers JSON only`);
      }
      return;
    case '_pretty':
      if (value !== 'true' && value !== 'false') throw bad(`Invalid _pretty value "${value}" (expected true or false)`);
      return;
    case '_summary':
      if (value === 'count') q.summaryCount = true;
      else if (value !== 'false') throw bad(`Unsupported _summary value "${value}" (supported: count, false)`);
      return;
    case '_total':
      if (value !== 'none' && value !== 'estimate' && value !== 'accurate') throw bad(`Invalid _total value "${value}" (expected none, estimate or accurate)`);
      q.totalMode = value;
      return;
  }
}
