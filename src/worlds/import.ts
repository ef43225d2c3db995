/**
 * Import FHIR R4 data into a world: Bundles (transaction, batch, collection, searchset; one JSON file each, e.g.
 * Synthea patient bundles) and bulk NDJSON (one resource per line, one file per type, e.g. `Condition.000.ndjson`).
 *
 * - Bundle entries with `fullUrl: urn:uuid:…` (or POST requests) get server ids (numeric, HAPI-style, from
 *   `firstId`); `PUT Type/id` entries keep their id; references to `urn:uuid:…` and to the original `Type/id` are
 *   rewritten to the new `Type/id`.
 * - NDJSON resources keep their ids; `Type/id` references stay as they are.
 * - Conditional references (`Practitioner?identifier=system|value`) are resolved against the imported resources'
 *   identifiers when possible.
 * - References that resolve to nothing (dangling `Encounter/x`, unresolvable conditional references) are kept
 *   verbatim and reported (counts plus examples); they are not fatal.
 * - Malformed input (bad JSON, a line that is not a resource, an unknown resource type) fails with an ImportError
 *   naming the file and line; nothing is added to the store in that case.
 * - Optionally skip billing resources (Claim, ExplanationOfBenefit).
 */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import type { Resource } from '../fhir/types.js';
import type { StoreLoader } from '../fhir/store-api.js';
import { R4_RESOURCE_TYPES } from '../fhir/resource-types.js';
import { parseFhirDate } from '../fhir/dates.js';
import { BP_DIASTOLIC, BP_LOINC, BP_SYSTOLIC, LABS, LOINC, POC_GLU_LOINC, VITALS } from './catalog.js';

export class ImportError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super(line !== undefined ? `${file}:${line}: ${message}` : `${file}: ${message}`);
    this.name = 'ImportError';
  }
}

export const BILLING_TYPES = ['Claim', 'ExplanationOfBenefit'] as const;

export interface ImportOptions {
  /** Skip Claim and ExplanationOfBenefit resources (references to them are then reported as dangling). */
  skipBilling?: boolean;
  /**
   * Re-base dates: shift every date / dateTime / instant value (outside `meta`) by the same whole number of days so
   * that the latest one lies within the 24 h before this instant, never after it (e.g. MedAgentBench's NOW).
   * Billing resources (Claim, ExplanationOfBenefit) shift too but do not count (their billing periods may end later). Intervals, times of day and offsets are preserved; birth dates shift too (ages at events stay the same).
   */
  rebaseTo?: string;
  /**
   * MedAgentBench compat mode: Observations with a known LOINC (potassium 2823-3/6298-4, glucose 2345-7/2339-0/41653-7,
   * HbA1c 4548-4, magnesium 19123-9, BMP/CBC, vitals) get the local base-name coding under http://loinc.org as well
   * (`K`, `GLU`, `A1C`, `MG`, `HEARTRATE`, …) and their value rounded to clinical precision; BP panels (55284-4,
   * 85354-9) get the `BP` coding and a flowsheet `valueString` ("128/76 mmHg"). Off by default (imports verbatim).
   */
  medagentbenchCodes?: boolean;
  /** First numeric id for resources that get a server id (bundle POST / urn:uuid entries). */
  firstId?: number;
  /** Does the target store already hold `type/id`? (references into the world's own data are not dangling) */
  exists?: (type: string, id: string) => boolean;
}

export interface UnresolvedReference {
  file: string;
  line?: number;
  /** `Type/id` of the resource holding the reference (after import). */
  resource: string;
  /** JSON path of the reference element, e.g. `encounter.reference`. */
  path: string;
  reference: string;
  reason: 'dangling' | 'conditional' | 'unsupported';
}

export interface ImportReport {
  files: Array<{ path: string; kind: 'bundle' | 'ndjson' | 'resource'; resources: number }>;
  /** Imported resources per type. */
  counts: Record<string, number>;
  /** Skipped resources per type (billing). */
  skipped: Record<string, number>;
  /** Resources that received a new server id. */
  idsAssigned: number;
  /** References rewritten to new ids (urn:uuid, original ids, resolved conditional references). */
  referencesRewritten: number;
  unresolved: {
    total: number;
    dangling: number;
    conditional: number;
    /** Counts per target type (`Encounter`, `Practitioner?identifier`, …). */
    byTarget: Record<string, number>;
    /** Up to 20 examples (at most 5 per target type and reason). */
    examples: UnresolvedReference[];
  };
  deceasedPatients: number;
  /** The highest numeric id assigned (or firstId - 1 if none). */
  lastId: number;
  /** Days every date was shifted by (`rebaseTo`), or 0. */
  rebasedDays: number;
  /** Observations that received a local MedAgentBench coding (`medagentbenchCodes`). */
  localCodesAdded: number;
}

interface Item {
  resource: Resource;
  file: string;
  line?: number;
  fullUrl?: string;
  /** Original `Type/id` before re-identification. */
  originalRef?: string;
  assign: boolean;
}

const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

/** Expand paths (files or directories) into the sorted list of .json / .ndjson files to import. */
export function listImportFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new ImportError('no such file or directory', p);
    const st = statSync(p);
    if (st.isDirectory()) {
      const files = readdirSync(p)
        .filter((f) => /\.(json|ndjson|jsonl)$/i.test(f))
        .sort()
        .map((f) => join(p, f));
      if (!files.length) throw new ImportError('directory holds no .json or .ndjson files', p);
      out.push(...files);
    } else out.push(p);
  }
  return out;
}

function checkResource(r: unknown, file: string, line?: number): Resource {
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw new ImportError('not a JSON object', file, line);
  const res = r as Resource;
  if (typeof res.resourceType !== 'string') throw new ImportError('missing resourceType', file, line);
  if (!R4_RESOURCE_TYPES.has(res.resourceType)) throw new ImportError(`unknown FHIR R4 resource type "${res.resourceType}"`, file, line);
  if (res.id !== undefined && (typeof res.id !== 'string' || !ID_RE.test(res.id))) throw new ImportError(`invalid id ${JSON.stringify(res.id)}`, file, line);
  return res;
}

/** Line number (1-based) of a character offset, for JSON.parse error messages. */
function lineOf(text: string, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

/**
 * Offset of the first JSON syntax error in `text` (V8's JSON.parse messages do not always carry a position).
 * A small recursive-descent scanner; only called after JSON.parse has failed.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      else if (text.charCodeAt(i) < 0x20) fail();
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    } else if (c === '"') str();
    else {
      const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (pos) {
    if (typeof pos === 'number') return pos;
    throw pos;
  }
  return text.length;
}

function parseJsonFile(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 120);
    throw new ImportError(`malformed JSON (${msg})`, file, lineOf(text, jsonErrorOffset(text)));
  }
}

function readItems(file: string, report: ImportReport): Item[] {
  const text = readFileSync(file, 'utf8');
  const items: Item[] = [];
  const isNdjson = /\.(ndjson|jsonl)$/i.test(file);
  if (isNdjson) {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!.trim();
      if (!l) continue;
      let r: unknown;
      try {
        r = JSON.parse(l);
      } catch (e) {
        throw new ImportError(`malformed JSON line (${e instanceof Error ? e.message : String(e)})`, file, i + 1);
      }
      const res = checkResource(r, file, i + 1);
      items.push({ resource: res, file, line: i + 1, assign: res.id === undefined });
    }
    report.files.push({ path: file, kind: 'ndjson', resources: items.length });
    return items;
  }
  const doc = checkResource(parseJsonFile(text, file), file);
  if (doc.resourceType !== 'Bundle') {
    items.push({ resource: doc, file, assign: doc.id === undefined });
    report.files.push({ path: file, kind: 'resource', resources: 1 });
    return items;
  }
  const entries = Array.isArray(doc.entry) ? doc.entry : [];
  const bundleType = doc.type;
  entries.forEach((e: any, idx: number) => {
    const where = `entry[${idx}]`;
    if (!e || typeof e !== 'object' || !e.resource) throw new ImportError(`${where} has no resource`, file);
    let r: Resource;
    try {
      r = checkResource(e.resource, file);
    } catch (err) {
      throw new ImportError(`${where}: ${(err as ImportError).message.replace(`${file}: `, '')}`, file);
    }
    const method = e.request?.method;
    const fullUrl = typeof e.fullUrl === 'string' ? e.fullUrl : undefined;
    let assign = false;
    if (bundleType === 'transaction' || bundleType === 'batch') {
      if (method === 'PUT' && typeof e.request.url === 'string' && /^[A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(e.request.url)) {
        r = { ...r, id: e.request.url.split('/')[1] };
      } else assign = true;
    } else assign = r.id === undefined || (fullUrl?.startsWith('urn:uuid:') ?? false);
    items.push({ resource: r, file, fullUrl, assign, originalRef: r.id !== undefined ? `${r.resourceType}/${r.id}` : undefined });
  });
  report.files.push({ path: file, kind: 'bundle', resources: items.length });
  return items;
}

/** Import files into a store. Throws ImportError (nothing added) on malformed input. */
export function importFiles(store: StoreLoader, paths: string[], opts: ImportOptions = {}): ImportReport {
  const report: ImportReport = {
    files: [],
    counts: {},
    skipped: {},
    idsAssigned: 0,
    referencesRewritten: 0,
    unresolved: { total: 0, dangling: 0, conditional: 0, byTarget: {}, examples: [] },
    deceasedPatients: 0,
    lastId: (opts.firstId ?? 1) - 1,
    rebasedDays: 0,
    localCodesAdded: 0,
  };
  const files = listImportFiles(paths);
  let items: Item[] = [];
  for (const f of files) items.push(...readItems(f, report));

  if (opts.skipBilling) {
    const billing = new Set<string>(BILLING_TYPES);
    items = items.filter((it) => {
      if (!billing.has(it.resource.resourceType)) return true;
      report.skipped[it.resource.resourceType] = (report.skipped[it.resource.resourceType] ?? 0) + 1;
      return false;
    });
  }

  // Assign ids and build the reference maps.
  let next = opts.firstId ?? 1;
  const urlMap = new Map<string, string>(); // fullUrl or original Type/id → new Type/id
  const known = new Set<string>(); // imported Type/id
  const byIdentifier = new Map<string, string>(); // `Type|system|value` and `Type||value` → Type/id
  for (const it of items) {
    const r = it.resource;
    if (it.assign) {
      const { resourceType, id: _old, ...rest } = r;
      it.resource = { resourceType, id: String(next++), ...rest };
      report.idsAssigned++;
    }
    const ref = `${it.resource.resourceType}/${it.resource.id}`;
    if (known.has(ref)) throw new ImportError(`duplicate resource ${ref}`, it.file, it.line);
    if (!it.assign && opts.exists?.(it.resource.resourceType, it.resource.id!)) throw new ImportError(`${ref} already exists in the world`, it.file, it.line);
    known.add(ref);
    if (it.fullUrl) urlMap.set(it.fullUrl, ref);
    if (it.originalRef && it.originalRef !== ref) urlMap.set(it.originalRef, ref);
    for (const ident of Array.isArray(it.resource.identifier) ? it.resource.identifier : []) {
      if (ident && typeof ident.value === 'string') {
        byIdentifier.set(`${it.resource.resourceType}|${ident.system ?? ''}|${ident.value}`, ref);
        byIdentifier.set(`${it.resource.resourceType}||${ident.value}`, ref);
      }
    }
  }
  report.lastId = next - 1;

  const unresolved = (it: Item, path: string, reference: string, reason: UnresolvedReference['reason'], target: string) => {
    const u = report.unresolved;
    u.total++;
    if (reason === 'conditional') u.conditional++;
    else u.dangling++;
    u.byTarget[target] = (u.byTarget[target] ?? 0) + 1;
    if (u.examples.length < 20 && u.examples.filter((x) => x.reason === reason && x.reference.split(/[/?]/)[0] === reference.split(/[/?]/)[0]).length < 5)
      u.examples.push({ file: it.file, line: it.line, resource: `${it.resource.resourceType}/${it.resource.id}`, path, reference, reason });
  };
  const resolve = (it: Item, path: string, ref: string): string | undefined => {
    const mapped = urlMap.get(ref);
    if (mapped) return mapped;
    if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) {
      unresolved(it, path, ref, 'dangling', 'urn');
      return undefined;
    }
    if (ref.startsWith('#')) return undefined; // contained resource
    const q = ref.indexOf('?');
    if (q > 0) {
      const type = ref.slice(0, q);
      const params = new URLSearchParams(ref.slice(q + 1));
      const ident = params.get('identifier');
      if (ident !== null && [...params.keys()].length === 1) {
        const bar = ident.indexOf('|');
        const key = bar >= 0 ? `${type}|${ident.slice(0, bar)}|${ident.slice(bar + 1)}` : `${type}||${ident}`;
        const hit = byIdentifier.get(key);
        if (hit) return hit;
      }
      unresolved(it, path, ref, 'conditional', `${type}?${[...params.keys()].join('&')}`);
      return undefined;
    }
    const m = /^(?:https?:\/\/[^?]*\/)?([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
    if (!m) {
      unresolved(it, path, ref, 'unsupported', 'other');
      return undefined;
    }
    const local = `${m[1]}/${m[2]}`;
    if (known.has(local)) return ref === local ? undefined : local;
    if (opts.exists?.(m[1]!, m[2]!)) return undefined;
    unresolved(it, path, ref, 'dangling', m[1]!);
    return undefined;
  };
  const walk = (it: Item, node: any, path: string): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(it, v, `${path}[${i}]`));
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const k of Object.keys(node)) {
      const v = node[k];
      const p = path ? `${path}.${k}` : k;
      if (k === 'reference' && typeof v === 'string') {
        const nv = resolve(it, p, v);
        if (nv !== undefined && nv !== v) {
          node[k] = nv;
          report.referencesRewritten++;
        }
      } else if (v && typeof v === 'object') walk(it, v, p);
    }
  };
  for (const it of items) {
    // Work on a private copy: the caller's parsed objects are not shared with the store.
    it.resource = structuredClone(it.resource);
    walk(it, it.resource, '');
    if (it.resource.resourceType === 'Patient' && (it.resource.deceasedDateTime !== undefined || it.resource.deceasedBoolean === true))
      report.deceasedPatients++;
  }
  if (opts.rebaseTo !== undefined) {
    const target = Date.parse(opts.rebaseTo);
    if (!Number.isFinite(target)) throw new ImportError(`rebaseTo is not a date-time: ${JSON.stringify(opts.rebaseTo)}`, '(options)');
    // The latest of all shiftable values (not only the primary dates: `issued`, period ends, … must not pass NOW).
    // Billing resources do not count: Synthea's ExplanationOfBenefit billing periods run a year past the care.
    let latest = -Infinity;
    const billing = new Set<string>(BILLING_TYPES);
    for (const it of items) {
      if (billing.has(it.resource.resourceType)) continue;
      shiftDates(it.resource, 0, (v) => {
        const d = parseFhirDate(v);
        if (d && d[0] > latest) latest = d[0];
      });
    }
    if (latest > -Infinity) {
      const days = Math.floor((target - latest) / 86_400_000);
      report.rebasedDays = days;
      if (days !== 0) for (const it of items) shiftDates(it.resource, days);
    }
  }
  if (opts.medagentbenchCodes) {
    for (const it of items) if (it.resource.resourceType === 'Observation' && addLocalCodes(it.resource)) report.localCodesAdded++;
  }
  for (const it of items) {
    try {
      store.add(it.resource);
    } catch (e) {
      throw new ImportError(`cannot add ${it.resource.resourceType}/${it.resource.id}: ${e instanceof Error ? e.message : String(e)}`, it.file, it.line);
    }
    report.counts[it.resource.resourceType] = (report.counts[it.resource.resourceType] ?? 0) + 1;
  }
  return report;
}

const DATE_VALUE_RE = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Shift every full date / dateTime / instant string (outside `meta`) by whole days, keeping its text format. */
function shiftDates(node: any, days: number, visit?: (value: string) => void): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      if (typeof node[i] === 'string') node[i] = shiftDate(node[i], days, visit);
      else shiftDates(node[i], days, visit);
    }
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const k of Object.keys(node)) {
    if (k === 'meta' || k === 'id' || k === 'reference' || k === 'div' || k === 'data') continue;
    const v = node[k];
    if (typeof v === 'string') node[k] = shiftDate(v, days, visit);
    else if (v && typeof v === 'object') shiftDates(v, days, visit);
  }
}

function shiftDate(s: string, days: number, visit?: (value: string) => void): string {
  const m = DATE_VALUE_RE.exec(s);
  if (!m) return s;
  if (visit) visit(s);
  if (days === 0) return s;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + days * 86_400_000);
  if (Number(m[1]) < 1000 || Number.isNaN(d.getTime())) return s;
  return d.toISOString().slice(0, 10) + (m[4] ?? '');
}

/** LOINC → [local code, decimals] for the compat mode. */
const LOCAL_BY_LOINC = new Map<string, [string, number]>();
for (const d of Object.values(LABS)) LOCAL_BY_LOINC.set(d.loinc, [d.local, d.decimals]);
for (const d of Object.values(VITALS)) LOCAL_BY_LOINC.set(d.loinc, [d.local, d.decimals]);
for (const [loinc, local] of [
  ['6298-4', 'K'],
  ['2339-0', 'GLU'],
  [POC_GLU_LOINC.code, 'GLU'],
  ['2947-0', 'NA'],
  ['2069-3', 'CL'],
  ['20565-8', 'CO2'],
  ['6299-2', 'BUN'],
  ['38483-4', 'CR'],
  ['49765-1', 'CA'],
  ['2708-6', 'SPO2'],
  ['8331-1', 'TEMP'],
] as const) {
  LOCAL_BY_LOINC.set(loinc, [local, (LABS as Record<string, { decimals: number }>)[local]?.decimals ?? VITALS[local]!.decimals]);
}

function addLocalCodes(r: Resource): boolean {
  const codings: any[] = Array.isArray(r.code?.coding) ? r.code.coding : [];
  const loinc = codings.find(
    (c) => c && c.system === LOINC && typeof c.code === 'string' && (LOCAL_BY_LOINC.has(c.code) || c.code === BP_LOINC.code || c.code === '55284-4'),
  );
  if (!loinc) return false;
  if (loinc.code === BP_LOINC.code || loinc.code === '55284-4') {
    if (codings.some((c) => c?.code === 'BP')) return false;
    codings.push({ system: LOINC, code: 'BP', display: 'BP' });
    const comp = (code: string) =>
      (Array.isArray(r.component) ? r.component : []).find((c: any) => c?.code?.coding?.some((x: any) => x?.code === code))?.valueQuantity?.value;
    const sys = comp(BP_SYSTOLIC.code);
    const dia = comp(BP_DIASTOLIC.code);
    if (r.valueString === undefined && typeof sys === 'number' && typeof dia === 'number') r.valueString = `${Math.round(sys)}/${Math.round(dia)} mmHg`;
    return true;
  }
  const [local, decimals] = LOCAL_BY_LOINC.get(loinc.code)!;
  if (codings.some((c) => c?.code === local)) return false;
  codings.push({ system: LOINC, code: local, display: local });
  if (typeof r.valueQuantity?.value === 'number') {
    const f = 10 ** decimals;
    r.valueQuantity.value = Math.round(r.valueQuantity.value * f) / f;
  }
  return true;
}

/** One-line summary of a report, e.g. for the CLI. */
export function summarizeImport(r: ImportReport): string {
  const total = Object.values(r.counts).reduce((a, b) => a + b, 0);
  const skipped = Object.values(r.skipped).reduce((a, b) => a + b, 0);
  return (
    `imported ${total} resources from ${r.files.length} file(s)` +
    (skipped ? `, skipped ${skipped} billing resources` : '') +
    (r.unresolved.total ? `, ${r.unresolved.total} unresolved references (${r.unresolved.dangling} dangling, ${r.unresolved.conditional} conditional)` : '') +
    (r.files.length
      ? ` [${r.files
          .map((f) => basename(f.path))
          .slice(0, 3)
          .join(', ')}${r.files.length > 3 ? ', …' : ''}]`
      : '')
  );
}
