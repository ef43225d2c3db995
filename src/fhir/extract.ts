/**
 * Generic search-key extraction for resources added with `add()` or created in a session: walks the JSON of the
 * elements named in search-params.ts and produces the same IndexKeys a bulk world passes to `addLazy()`.
 */
import { parseFhirDate, periodRange, type DateRange } from './dates.js';
import type { IndexKeys, Resource } from './types.js';

/** `Patient/S1`, `http://host/fhir/Patient/S1`, `S1` (bare ids count as Patient ids) → `S1`; other types → undefined. */
export function patientIdFromReference(ref: string): string | undefined {
  if (!ref) return undefined;
  const parts = ref.split('/').filter((p) => p !== '');
  if (parts.length === 1) return parts[0];
  let i = parts.length - 2;
  // Tolerate version-specific references: Patient/S1/_history/2
  if (parts.length >= 4 && parts[parts.length - 2] === '_history') i = parts.length - 4;
  return parts[i] === 'Patient' ? parts[i + 1] : undefined;
}

function codingTokens(cc: any, out: string[]): void {
  if (!cc || typeof cc !== 'object') return;
  const list = Array.isArray(cc) ? cc : [cc];
  for (const c of list) {
    if (!c || typeof c !== 'object' || !Array.isArray(c.coding)) continue;
    for (const coding of c.coding) {
      if (coding && typeof coding.code === 'string') {
        out.push(`${typeof coding.system === 'string' ? coding.system : ''}|${coding.code}`);
      }
    }
  }
}

function dateOf(value: unknown): DateRange | undefined {
  if (typeof value === 'string') return parseFhirDate(value);
  if (value && typeof value === 'object') return periodRange(value as { start?: string; end?: string });
  return undefined;
}

function firstDate(r: Resource, names: string[]): DateRange | undefined {
  for (const n of names) {
    if (r[n] !== undefined) {
      const d = dateOf(r[n]);
      if (d) return d;
    }
  }
  return undefined;
}

function pushStr(map: Record<string, string[]>, key: string, v: unknown): void {
  if (typeof v !== 'string' || v === '') return;
  (map[key] ??= []).push(v);
}

function patientStrings(r: Resource): Record<string, string[]> {
  const s: Record<string, string[]> = {};
  for (const n of Array.isArray(r.name) ? r.name : []) {
    if (!n || typeof n !== 'object') continue;
    pushStr(s, 'family', n.family);
    pushStr(s, 'name', n.family);
    for (const g of Array.isArray(n.given) ? n.given : []) {
      pushStr(s, 'given', g);
      pushStr(s, 'name', g);
    }
    for (const p of Array.isArray(n.prefix) ? n.prefix : []) pushStr(s, 'name', p);
    for (const p of Array.isArray(n.suffix) ? n.suffix : []) pushStr(s, 'name', p);
    pushStr(s, 'name', n.text);
  }
  for (const id of Array.isArray(r.identifier) ? r.identifier : []) {
    if (id && typeof id.value === 'string') pushStr(s, 'identifier', `${typeof id.system === 'string' ? id.system : ''}|${id.value}`);
  }
  for (const t of Array.isArray(r.telecom) ? r.telecom : []) {
    if (t && typeof t.value === 'string') pushStr(s, 'telecom', `${typeof t.system === 'string' ? t.system : ''}|${t.value}`);
  }
  if (typeof r.gender === 'string') pushStr(s, 'gender', `http://hl7.org/fhir/administrative-gender|${r.gender}`);
  for (const a of Array.isArray(r.address) ? r.address : []) {
    if (!a || typeof a !== 'object') continue;
    for (const l of Array.isArray(a.line) ? a.line : []) pushStr(s, 'address', l);
    for (const k of ['city', 'district', 'state', 'postalCode', 'country', 'text']) pushStr(s, 'address', a[k]);
    pushStr(s, 'address-city', a.city);
    pushStr(s, 'address-state', a.state);
    pushStr(s, 'address-postalcode', a.postalCode);
  }
  return s;
}

/** A reference to a non-Patient resource, searchable as written (`Schedule/7`) and by its bare id (`7`). */
function pushReference(map: Record<string, string[]>, key: string, ref: unknown): void {
  if (typeof ref !== 'string' || ref === '') return;
  pushStr(map, key, ref);
  const parts = ref.split('/').filter((p) => p !== '');
  const bare = parts.length >= 2 ? parts[parts.length - 1]! : undefined;
  if (bare !== undefined && bare !== ref) pushStr(map, key, bare);
}

/** Extract the index keys of a resource (see search-params.ts for the element behind each parameter). */
export function extractKeys(r: Resource): IndexKeys {
  const keys: IndexKeys = {};
  const t = r.resourceType;
  if (typeof r.meta?.lastUpdated === 'string') {
    const d = parseFhirDate(r.meta.lastUpdated);
    if (d) keys.lastUpdated = d[0];
  }
  if (t === 'Patient' || t === 'Practitioner') {
    const d = t === 'Patient' && typeof r.birthDate === 'string' ? parseFhirDate(r.birthDate) : undefined;
    if (d) keys.date = d;
    keys.strings = patientStrings(r);
    return keys;
  }
  const strings: Record<string, string[]> = {};
  let ref = r.subject?.reference ?? r.patient?.reference;
  if (t === 'Appointment') {
    for (const part of Array.isArray(r.participant) ? r.participant : []) {
      const a = part?.actor?.reference;
      if (typeof a !== 'string') continue;
      pushReference(strings, 'actor', a);
      if (a.includes('Practitioner/')) pushReference(strings, 'practitioner', a);
      if (ref === undefined && patientIdFromReference(a) !== undefined && a.includes('/')) ref = a;
    }
    for (const sl of Array.isArray(r.slot) ? r.slot : []) pushReference(strings, 'slot', sl?.reference);
  } else if (t === 'Slot') {
    pushReference(strings, 'schedule', r.schedule?.reference);
  } else if (t === 'Schedule') {
    for (const a of Array.isArray(r.actor) ? r.actor : []) pushReference(strings, 'actor', a?.reference);
    if (typeof r.active === 'boolean') pushStr(strings, 'active', String(r.active));
  } else if (t === 'AllergyIntolerance') {
    const vs: string[] = [];
    codingTokens(r.verificationStatus, vs);
    for (const v of vs) pushStr(strings, 'verification-status', v);
    pushStr(strings, 'criticality', r.criticality);
    for (const c of Array.isArray(r.category) ? r.category : []) pushStr(strings, 'category', c);
  }
  if (typeof ref === 'string') {
    const p = patientIdFromReference(ref);
    if (p !== undefined && ref.includes('/')) keys.patient = p;
  }
  const code: string[] = [];
  codingTokens(t === 'MedicationRequest' ? r.medicationCodeableConcept : t === 'Immunization' ? r.vaccineCode : r.code, code);
  if (code.length) keys.code = code;
  const category: string[] = [];
  if (t !== 'AllergyIntolerance') codingTokens(r.category, category);
  if (category.length) keys.category = category;
  if (t === 'Condition' || t === 'AllergyIntolerance') {
    const st: string[] = [];
    codingTokens(r.clinicalStatus, st);
    if (st.length) keys.status = st;
  } else if (typeof r.status === 'string') {
    keys.status = [`|${r.status}`];
  }
  if (typeof r.intent === 'string') pushStr(strings, 'intent', r.intent);
  if (typeof r.priority === 'string') pushStr(strings, 'priority', r.priority);
  if (Object.keys(strings).length) keys.strings = strings;
  let date: DateRange | undefined;
  let date2: DateRange | undefined;
  switch (t) {
    case 'Observation':
      date = firstDate(r, ['effectiveDateTime', 'effectivePeriod', 'effectiveInstant', 'effectiveTiming']);
      break;
    case 'Condition':
      date = firstDate(r, ['onsetDateTime', 'onsetPeriod']);
      break;
    case 'MedicationRequest': {
      date = firstDate(r, ['authoredOn']);
      let lo = Infinity;
      let hi = -Infinity;
      for (const di of Array.isArray(r.dosageInstruction) ? r.dosageInstruction : []) {
        for (const ev of Array.isArray(di?.timing?.event) ? di.timing.event : []) {
          const d = dateOf(ev);
          if (d) {
            lo = Math.min(lo, d[0]);
            hi = Math.max(hi, d[1]);
          }
        }
      }
      if (lo !== Infinity) date2 = [lo, hi];
      break;
    }
    case 'Procedure':
      date = firstDate(r, ['performedDateTime', 'performedPeriod']);
      break;
    case 'ServiceRequest':
      date = firstDate(r, ['authoredOn']);
      date2 = firstDate(r, ['occurrenceDateTime', 'occurrencePeriod']);
      break;
    case 'AllergyIntolerance':
      date = firstDate(r, ['recordedDate']);
      break;
    case 'Immunization':
      date = firstDate(r, ['occurrenceDateTime']);
      break;
    case 'Appointment':
    case 'Slot':
      date = typeof r.start === 'string' ? periodRange({ start: r.start, end: typeof r.end === 'string' ? r.end : undefined }) : undefined;
      break;
    case 'Schedule':
      date = firstDate(r, ['planningHorizon']);
      break;
    default:
      date = firstDate(r, [
        'effectiveDateTime',
        'effectivePeriod',
        'onsetDateTime',
        'performedDateTime',
        'performedPeriod',
        'authoredOn',
        'recordedDate',
        'period',
        'date',
      ]);
  }
  if (date) keys.date = date;
  if (date2) keys.date2 = date2;
  return keys;
}
