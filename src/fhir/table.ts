/**
 * Column-oriented, append-only storage of one resource type plus its search indexes. Used for the frozen base data
 * (one table per type) and for session overlays (a small table per type a session wrote to).
 *
 * Per position: id, source (resource or lazy materialiser), patient (interned int), date ranges (double arrays,
 * NaN = none), token lists (CSR: offsets + interned token ids) and optional string keys. Indexes: per patient →
 * positions; per (patient, code token) and (patient, category token) → positions; per token → positions.
 * Positions are appended in insertion order, so every position list is sorted.
 */
import type { DateCriterion } from './dates.js';
import { dateMatches } from './dates.js';
import type { Criterion, TokenValue } from './query.js';
import { normalizeString } from './query.js';
import type { ParamDef } from './search-params.js';
import type { IndexKeys, Resource } from './types.js';

/** Interned token (`system|code`) and patient id tables. */
export class Interner {
  readonly tokenIds = new Map<string, number>();
  readonly tokSystem: string[] = [];
  readonly tokCode: string[] = [];
  /** code → token ids and system → token ids: built on the first search that needs them, then kept up to date. */
  private byCode: Map<string, number[]> | undefined;
  private bySystem: Map<string, number[]> | undefined;
  readonly patientIds = new Map<string, number>();
  readonly patients: string[] = [];

  token(raw: string): number {
    let id = this.tokenIds.get(raw);
    if (id !== undefined) return id;
    const bar = raw.indexOf('|');
    const system = bar < 0 ? '' : raw.slice(0, bar);
    const code = bar < 0 ? raw : raw.slice(bar + 1);
    id = this.tokSystem.length;
    this.tokenIds.set(raw, id);
    this.tokSystem.push(system);
    this.tokCode.push(code);
    if (this.byCode) this.index(id);
    return id;
  }

  private index(id: number): void {
    push(this.byCode!, this.tokCode[id], id);
    push(this.bySystem!, this.tokSystem[id], id);
  }

  private lastPatient = '';
  private lastPatientIdx = -1;

  patient(id: string): number {
    if (id === this.lastPatient) return this.lastPatientIdx;
    let p = this.patientIds.get(id);
    if (p === undefined) {
      p = this.patients.length;
      this.patientIds.set(id, p);
      this.patients.push(id);
    }
    this.lastPatient = id;
    this.lastPatientIdx = p;
    return p;
  }

  /** Token ids matching any of the query values (`undefined` system = any system). */
  matchTokens(values: TokenValue[]): Set<number> {
    const out = new Set<number>();
    if (!this.byCode && values.some((v) => v.code === undefined || v.system === undefined)) {
      this.byCode = new Map();
      this.bySystem = new Map();
      for (let id = 0; id < this.tokCode.length; id++) this.index(id);
    }
    for (const v of values) {
      if (v.code === undefined) {
        for (const t of this.bySystem!.get(v.system ?? '') ?? []) out.add(t);
      } else if (v.system === undefined) {
        for (const t of this.byCode!.get(v.code) ?? []) out.add(t);
      } else {
        const t = this.tokenIds.get(`${v.system}|${v.code}`);
        if (t !== undefined) out.add(t);
      }
    }
    return out;
  }
}

type TokenField = 'code' | 'category' | 'status';

class TokenColumn {
  off: number[] = [0];
  data: number[] = [];
}

/** A criterion compiled against one table's interner. */
type Compiled =
  | { k: 'id'; not: boolean; ids: Set<string> }
  | { k: 'patient'; pats: number[] }
  | { k: 'token'; field: TokenField; not: boolean; set: Set<number> }
  | { k: 'stoken'; name: string; not: boolean; values: TokenValue[] }
  | { k: 'string'; name: string; mode: 'start' | 'exact' | 'contains'; values: string[] }
  | { k: 'date'; lo: number[]; hi: number[]; values: DateCriterion[] }
  | { k: 'missing'; def: ParamDef; missing: boolean };

export type LazySource = () => Resource;

/** Numeric ids below this use a dense array (4 bytes per id up to the largest id seen) in tables that allow it. */
const DENSE_IDS = 1 << 23;

export interface TypeTableOptions {
  /**
   * Look numeric ids up in a dense array (default true): right for the base, whose ids are numerous and packed from
   * 1. Session overlays pass false: their few ids start above the base's largest id, so a dense array would cost 4
   * bytes per base id for every session.
   */
  denseIds?: boolean;
}

export class TypeTable {
  // Columns by position. The first row replaces them with one-element arrays: pushing onto `[]` reserves 17 slots,
  // and most session tables hold a single row.
  ids: Array<string | number> = [];
  /** Non-numeric ids (and numeric ids beyond the dense range, or all ids without `denseIds`) → position. */
  private readonly idToPos = new Map<string | number, number>();
  /** Numeric ids below `denseLimit` → position + 1 (0 = absent): no hashing for the bulk of the data. */
  private dense: Int32Array | undefined;
  /** DENSE_IDS, or 0 when dense ids are off. */
  private readonly denseLimit: number;
  src: Array<Resource | LazySource> = [];
  patient: number[] = [];
  dLo: number[] = [];
  dHi: number[] = [];
  d2Lo: number[] = [];
  d2Hi: number[] = [];
  lu: number[] = [];
  readonly cols: Record<TokenField, TokenColumn> = {
    code: new TokenColumn(),
    category: new TokenColumn(),
    status: new TokenColumn(),
  };
  // The maps below are created on first use: a session overlay of one resource should not pay for empty maps.
  /** Raw string keys per parameter name, by position (holes = none). */
  private strings: Map<string, Array<string[] | undefined>> | undefined;
  /** Normalised string keys (string parameters only). */
  private norm: Map<string, Array<string[] | undefined>> | undefined;
  private byPatient: Map<number, number[]> | undefined;
  private byPatientCode: Map<number, Map<number, number[]>> | undefined;
  private byPatientCategory: Map<number, Map<number, number[]>> | undefined;
  /** token → positions, per field; built on first use once sealed (code-only searches are rare). */
  private byToken: Map<TokenField, Map<number, number[]>> | undefined;
  /** Widest `date` range seen (for bounding ge/gt searches on the low end). */
  private maxDateSpan = 0;
  /** Set by `seal()` (base frozen): lazily built indexes below may then be cached. */
  private sealed = false;
  /** Lazily built on sealed tables only (so absent from session overlays). */
  private stokenIdx: Map<string, Map<string, number[]>> | undefined;
  private patientDates: Map<number, { pos: Int32Array; lo: Float64Array }> | undefined;

  constructor(
    readonly resourceType: string,
    readonly interner: Interner,
    opts: TypeTableOptions = {},
  ) {
    this.denseLimit = opts.denseIds === false ? 0 : DENSE_IDS;
  }

  get size(): number {
    return this.ids.length;
  }

  /** No more appends: lazily built secondary indexes may be cached from now on. */
  seal(): void {
    this.sealed = true;
  }

  /** Token-valued string keys (identifier, telecom, …) by code → positions. Sealed tables only. */
  private stokenIndex(name: string): Map<string, number[]> | undefined {
    if (!this.sealed) return undefined;
    this.stokenIdx ??= new Map();
    let m = this.stokenIdx.get(name);
    if (m) return m;
    m = new Map();
    const col = this.strings?.get(name) ?? [];
    col.forEach((vals, pos) => {
      if (!vals) return;
      for (const raw of vals) {
        const bar = raw.indexOf('|');
        const code = bar < 0 ? raw : raw.slice(bar + 1);
        const l = m!.get(code);
        if (!l) m!.set(code, [pos]);
        else if (l[l.length - 1] !== pos) l.push(pos);
      }
    });
    this.stokenIdx.set(name, m);
    return m;
  }

  /** A patient's positions ordered by `date` low bound (dated ones only). Sealed tables only. */
  private patientDateIndex(pat: number): { pos: Int32Array; lo: Float64Array } | undefined {
    if (!this.sealed) return undefined;
    this.patientDates ??= new Map();
    let e = this.patientDates.get(pat);
    if (e) return e;
    const all = (this.byPatient?.get(pat) ?? []).filter((p) => this.dLo[p] === this.dLo[p]);
    all.sort((a, b) => this.dLo[a] - this.dLo[b] || a - b);
    e = { pos: Int32Array.from(all), lo: Float64Array.from(all, (p) => this.dLo[p]) };
    this.patientDates.set(pat, e);
    return e;
  }

  /** A bound [a, b) on the `date` low value implied by a date criterion (a superset of its matches). */
  private loBounds(c: Extract<Compiled, { k: 'date' }>): [number, number] {
    let a = Infinity;
    let b = -Infinity;
    const span = this.maxDateSpan;
    for (const d of c.values) {
      let lo = -Infinity;
      let hi = Infinity;
      switch (d.prefix) {
        case 'eq':
          lo = d.low;
          hi = d.high;
          break;
        case 'lt':
        case 'eb':
          hi = d.low;
          break;
        case 'le':
          hi = d.high;
          break;
        case 'sa':
          lo = d.high;
          break;
        case 'ge':
          lo = d.low - span;
          break;
        case 'gt':
          lo = d.high - span;
          break;
      }
      a = Math.min(a, lo);
      b = Math.max(b, hi);
    }
    return [a, b];
  }

  idAt(pos: number): string {
    const id = this.ids[pos];
    return typeof id === 'number' ? String(id) : id;
  }

  posOf(id: string): number | undefined {
    const k = idKey(id);
    if (typeof k === 'number' && k < this.denseLimit) {
      const d = this.dense;
      const v = d !== undefined && k < d.length ? d[k] : 0;
      return v === 0 ? undefined : v - 1;
    }
    return this.idToPos.get(k);
  }

  resourceAt(pos: number): Resource {
    const s = this.src[pos];
    return typeof s === 'function' ? s() : s;
  }

  /** Append a resource; `stringParams` says which `keys.strings` entries are string (not token) parameters. */
  append(id: string, keys: IndexKeys, source: Resource | LazySource, stringParams: ReadonlySet<string>): number {
    const pos = this.ids.length;
    const k = idKey(id);
    if (typeof k === 'number' && k < this.denseLimit) {
      let d = this.dense;
      if (d === undefined || k >= d.length) {
        let n = d === undefined ? 1024 : d.length;
        while (n <= k) n *= 2;
        const grown = new Int32Array(n);
        if (d !== undefined) grown.set(d);
        this.dense = d = grown;
      }
      if (d[k] !== 0) throw new Error(`duplicate id ${this.resourceType}/${id}`);
      d[k] = pos + 1;
    } else {
      if (this.idToPos.has(k)) throw new Error(`duplicate id ${this.resourceType}/${id}`);
      this.idToPos.set(k, pos);
    }
    let pat = -1;
    if (keys.patient !== undefined) {
      pat = this.interner.patient(keys.patient);
      push((this.byPatient ??= new Map()), pat, pos);
    }
    if (keys.date) {
      const span = keys.date[1] - keys.date[0];
      if (!(span <= this.maxDateSpan)) this.maxDateSpan = span;
    }
    const dLo = keys.date ? keys.date[0] : NaN;
    const dHi = keys.date ? pointHigh(keys.date) : NaN;
    const d2Lo = keys.date2 ? keys.date2[0] : NaN;
    const d2Hi = keys.date2 ? pointHigh(keys.date2) : NaN;
    const lu = keys.lastUpdated ?? NaN;
    if (pos === 0) {
      this.ids = [k];
      this.src = [source];
      this.patient = [pat];
      this.dLo = [dLo];
      this.dHi = [dHi];
      this.d2Lo = [d2Lo];
      this.d2Hi = [d2Hi];
      this.lu = [lu];
    } else {
      this.ids.push(k);
      this.src.push(source);
      this.patient.push(pat);
      this.dLo.push(dLo);
      this.dHi.push(dHi);
      this.d2Lo.push(d2Lo);
      this.d2Hi.push(d2Hi);
      this.lu.push(lu);
    }
    this.addTokens('code', keys.code, pos, pat, keys.code && pat >= 0 ? (this.byPatientCode ??= new Map()) : undefined);
    this.addTokens('category', keys.category, pos, pat, keys.category && pat >= 0 ? (this.byPatientCategory ??= new Map()) : undefined);
    this.addTokens('status', keys.status, pos, pat);
    if (keys.strings) {
      for (const name in keys.strings) {
        const vals = keys.strings[name];
        if (!vals || vals.length === 0) continue;
        this.strings ??= new Map();
        let col = this.strings.get(name);
        if (!col) this.strings.set(name, (col = pos === 0 ? [vals] : []));
        col[pos] = vals;
        if (stringParams.has(name)) {
          this.norm ??= new Map();
          const normalized = vals.map(normalizeString);
          let n = this.norm.get(name);
          if (!n) this.norm.set(name, (n = pos === 0 ? [normalized] : []));
          n[pos] = normalized;
        }
      }
    }
    return pos;
  }

  private memoIdx: Map<number, Map<number, number[]>> | undefined;
  private memoPat = -1;
  private memoMap: Map<number, number[]> | undefined;

  private addTokens(field: TokenField, raw: string[] | undefined, pos: number, pat: number, byPatTok?: Map<number, Map<number, number[]>>): void {
    const col = this.cols[field];
    if (raw) {
      for (const r of raw) {
        const t = this.interner.token(r);
        col.data.push(t);
        if (byPatTok && pat >= 0) {
          let m = byPatTok === this.memoIdx && pat === this.memoPat ? this.memoMap : byPatTok.get(pat);
          if (!m) byPatTok.set(pat, (m = new Map()));
          this.memoIdx = byPatTok;
          this.memoPat = pat;
          this.memoMap = m;
          const list = m.get(t);
          if (!list) m.set(t, [pos]);
          else if (list[list.length - 1] !== pos) list.push(pos);
        }
      }
    }
    if (pos === 0) {
      col.data = col.data.slice();
      col.off = [0, col.data.length];
    } else col.off.push(col.data.length);
  }

  /** token → positions for a field (sealed tables only; built in one pass on first use). */
  private tokenIndex(field: TokenField): Map<number, number[]> | undefined {
    if (!this.sealed) return undefined;
    this.byToken ??= new Map();
    let m = this.byToken.get(field);
    if (m) return m;
    m = new Map();
    const col = this.cols[field];
    const n = this.size;
    for (let p = 0; p < n; p++) {
      for (let i = col.off[p]; i < col.off[p + 1]; i++) {
        const t = col.data[i];
        const l = m.get(t);
        if (!l) m.set(t, [p]);
        else if (l[l.length - 1] !== p) l.push(p);
      }
    }
    this.byToken.set(field, m);
    return m;
  }

  private compile(c: Criterion): Compiled {
    const def = c.def;
    if (c.modifier === 'missing') return { k: 'missing', def, missing: c.values[0] as boolean };
    const not = c.modifier === 'not';
    switch (def.kind) {
      case 'id':
        return { k: 'id', not, ids: new Set(c.values as string[]) };
      case 'reference': {
        const pats: number[] = [];
        for (const v of c.values as string[]) {
          const p = this.interner.patientIds.get(v);
          if (p !== undefined) pats.push(p);
        }
        return { k: 'patient', pats };
      }
      case 'token':
        if ('key' in def) return { k: 'token', field: def.key, not, set: this.interner.matchTokens(c.values as TokenValue[]) };
        return { k: 'stoken', name: def.strings, not, values: c.values as TokenValue[] };
      case 'string':
        return {
          k: 'string',
          name: def.strings,
          mode: c.modifier === 'exact' ? 'exact' : c.modifier === 'contains' ? 'contains' : 'start',
          values: c.values as string[],
        };
      case 'date': {
        const [lo, hi] = def.key === 'date' ? [this.dLo, this.dHi] : def.key === 'date2' ? [this.d2Lo, this.d2Hi] : [this.lu, this.lu];
        return { k: 'date', lo, hi, values: c.values as DateCriterion[] };
      }
    }
  }

  /** Rows superseded by a later version of their resource (`replace`): never matched by a search. */
  private dead: Set<number> | undefined;

  /**
   * Store a new version of a resource this table holds: its id then maps to the new row and the old row no longer
   * matches any search (session tables: updates made in a session).
   */
  replace(id: string, keys: IndexKeys, source: Resource | LazySource, stringParams: ReadonlySet<string>): number {
    const old = this.posOf(id);
    if (old === undefined) throw new Error(`no ${this.resourceType}/${id} to replace`);
    const k = idKey(id);
    if (typeof k === 'number' && k < this.denseLimit) this.dense![k] = 0;
    else this.idToPos.delete(k);
    const pos = this.append(id, keys, source, stringParams);
    (this.dead ??= new Set()).add(old);
    return pos;
  }

  /** Positions matching every criterion, in insertion order (current versions only). */
  search(criteria: Criterion[]): number[] {
    const found = this.searchRows(criteria);
    const dead = this.dead;
    return dead === undefined ? found : found.filter((p) => !dead.has(p));
  }

  private searchRows(criteria: Criterion[]): number[] {
    const compiled = criteria.map((c) => this.compile(c));
    // Pick candidates from the most selective index available.
    let candidates: number[] | undefined;
    let used = -1;
    let usedToo = -1;
    const idIdx = compiled.findIndex((c) => c.k === 'id' && !c.not);
    const patIdx = compiled.findIndex((c) => c.k === 'patient');
    const codeIdx = compiled.findIndex((c) => c.k === 'token' && !c.not && c.field === 'code');
    const catIdx = compiled.findIndex((c) => c.k === 'token' && !c.not && c.field === 'category');
    if (idIdx >= 0) {
      const c = compiled[idIdx] as Extract<Compiled, { k: 'id' }>;
      const list: number[] = [];
      for (const id of c.ids) {
        const p = this.posOf(id);
        if (p !== undefined) list.push(p);
      }
      candidates = sortUnique(list);
      used = idIdx;
    } else if (patIdx >= 0) {
      const pc = compiled[patIdx] as Extract<Compiled, { k: 'patient' }>;
      const tokIdx = codeIdx >= 0 ? codeIdx : catIdx;
      if (tokIdx >= 0) {
        const tc = compiled[tokIdx] as Extract<Compiled, { k: 'token' }>;
        const idx = tc.field === 'code' ? this.byPatientCode : this.byPatientCategory;
        const lists: number[][] = [];
        for (const p of pc.pats) {
          const m = idx?.get(p);
          if (!m) continue;
          for (const t of tc.set) {
            const l = m.get(t);
            if (l) lists.push(l);
          }
        }
        candidates = mergeLists(lists);
        // Both the patient and the token criterion are satisfied by construction.
        usedToo = tokIdx;
      } else {
        const dateIdx = compiled.findIndex((c) => c.k === 'date' && c.lo === this.dLo);
        const bounds = dateIdx >= 0 ? this.loBounds(compiled[dateIdx] as Extract<Compiled, { k: 'date' }>) : undefined;
        if (bounds && (bounds[0] > -Infinity || bounds[1] < Infinity) && pc.pats.every((p) => this.patientDateIndex(p))) {
          // Dated positions of the patient(s) whose low bound can match: binary search in date order.
          const list: number[] = [];
          for (const p of pc.pats) {
            const e = this.patientDateIndex(p)!;
            for (let i = lowerBound(e.lo, bounds[0]); i < e.lo.length && e.lo[i] < bounds[1]; i++) list.push(e.pos[i]);
          }
          candidates = sortUnique(list);
        } else {
          const lists: number[][] = [];
          for (const p of pc.pats) {
            const l = this.byPatient?.get(p);
            if (l) lists.push(l);
          }
          candidates = mergeLists(lists);
        }
      }
      used = patIdx;
    } else if ((codeIdx >= 0 || catIdx >= 0) && this.sealed) {
      const ti = codeIdx >= 0 ? codeIdx : catIdx;
      const tc = compiled[ti] as Extract<Compiled, { k: 'token' }>;
      const idx = this.tokenIndex(tc.field)!;
      const lists: number[][] = [];
      for (const t of tc.set) {
        const l = idx.get(t);
        if (l) lists.push(l);
      }
      candidates = mergeLists(lists);
      used = ti;
    }
    if (candidates === undefined) {
      const si = compiled.findIndex((c) => c.k === 'stoken' && !c.not && c.values.every((v) => v.code !== undefined));
      const idx = si >= 0 ? this.stokenIndex((compiled[si] as Extract<Compiled, { k: 'stoken' }>).name) : undefined;
      if (idx) {
        // Candidates by code; the criterion itself (system check) is still applied below.
        const lists: number[][] = [];
        for (const v of (compiled[si] as Extract<Compiled, { k: 'stoken' }>).values) {
          const l = idx.get(v.code!);
          if (l) lists.push(l);
        }
        candidates = mergeLists(lists);
      }
    }
    const rest = compiled.filter((_c, i) => i !== used && i !== usedToo);
    if (candidates === undefined) {
      const n = this.size;
      const out: number[] = [];
      for (let p = 0; p < n; p++) if (this.matchesAll(rest, p)) out.push(p);
      return out;
    }
    if (rest.length === 0) return candidates.slice();
    const out: number[] = [];
    for (const p of candidates) if (this.matchesAll(rest, p)) out.push(p);
    return out;
  }

  private matchesAll(cs: Compiled[], p: number): boolean {
    for (const c of cs) if (!this.matches(c, p)) return false;
    return true;
  }

  private matches(c: Compiled, p: number): boolean {
    switch (c.k) {
      case 'id':
        return c.ids.has(this.idAt(p)) !== c.not;
      case 'patient': {
        const v = this.patient[p];
        for (const x of c.pats) if (x === v) return true;
        return false;
      }
      case 'token': {
        const col = this.cols[c.field];
        const end = col.off[p + 1];
        let hit = false;
        for (let i = col.off[p]; i < end; i++) {
          if (c.set.has(col.data[i])) {
            hit = true;
            break;
          }
        }
        return hit !== c.not;
      }
      case 'stoken': {
        const vals = this.strings?.get(c.name)?.[p];
        return stokenMatch(vals, c.values) !== c.not;
      }
      case 'string': {
        const vals = c.mode === 'exact' ? this.strings?.get(c.name)?.[p] : this.norm?.get(c.name)?.[p];
        if (!vals) return false;
        for (const q of c.values) {
          for (const v of vals) {
            if (c.mode === 'exact' ? v === q : c.mode === 'start' ? v.startsWith(q) : v.includes(q)) return true;
          }
        }
        return false;
      }
      case 'date': {
        const lo = c.lo[p];
        if (lo !== lo) return false; // NaN: no value
        const hi = c.hi === c.lo ? lo + 1 : c.hi[p];
        for (const d of c.values) if (dateMatches(d, lo, hi)) return true;
        return false;
      }
      case 'missing':
        return this.hasValue(c.def, p) !== c.missing;
    }
  }

  private hasValue(def: ParamDef, p: number): boolean {
    switch (def.kind) {
      case 'id':
        return true;
      case 'reference':
        return this.patient[p] >= 0;
      case 'token':
        if ('key' in def) {
          const col = this.cols[def.key];
          return col.off[p + 1] > col.off[p];
        }
        return this.strings?.get(def.strings)?.[p] !== undefined;
      case 'string':
        return this.strings?.get(def.strings)?.[p] !== undefined;
      case 'date': {
        const arr = def.key === 'date' ? this.dLo : def.key === 'date2' ? this.d2Lo : this.lu;
        return arr[p] === arr[p];
      }
    }
  }

  /** The index keys stored for a position (normalised as indexed: interned tokens back to strings). */
  keysAt(pos: number): IndexKeys {
    const it = this.interner;
    const keys: IndexKeys = {};
    if (this.patient[pos] >= 0) keys.patient = it.patients[this.patient[pos]];
    for (const f of ['code', 'category', 'status'] as const) {
      const col = this.cols[f];
      if (col.off[pos + 1] > col.off[pos]) {
        keys[f] = col.data.slice(col.off[pos], col.off[pos + 1]).map((t) => `${it.tokSystem[t]}|${it.tokCode[t]}`);
      }
    }
    if (this.dLo[pos] === this.dLo[pos]) keys.date = [this.dLo[pos], this.dHi[pos]];
    if (this.d2Lo[pos] === this.d2Lo[pos]) keys.date2 = [this.d2Lo[pos], this.d2Hi[pos]];
    if (this.lu[pos] === this.lu[pos]) keys.lastUpdated = this.lu[pos];
    for (const [name, col] of this.strings ?? []) {
      const v = col[pos];
      if (v) (keys.strings ??= {})[name] = v;
    }
    return keys;
  }

  /** Sort key (low bound of a date key) for `_sort`. */
  sortValue(key: 'date' | 'date2' | 'lastUpdated', p: number): number {
    return key === 'date' ? this.dLo[p] : key === 'date2' ? this.d2Lo[p] : this.lu[p];
  }
}

/**
 * HAPI indexes a date-time that has a time of day as a single instant (low = high), whatever its precision; only
 * date-only values (day, month, year) are ranges. Ranges up to one minute wide are therefore stored as a point.
 */
function pointHigh(r: [number, number]): number {
  return r[1] - r[0] <= 60_000 ? r[0] + 1 : r[1];
}

function stokenMatch(vals: string[] | undefined, q: TokenValue[]): boolean {
  if (!vals) return false;
  for (const raw of vals) {
    const bar = raw.indexOf('|');
    const system = bar < 0 ? '' : raw.slice(0, bar);
    const code = bar < 0 ? raw : raw.slice(bar + 1);
    for (const v of q) {
      if ((v.system === undefined || v.system === system) && (v.code === undefined || v.code === code)) return true;
    }
  }
  return false;
}

/** Numeric ids in canonical form are stored as numbers (cheaper map keys and no string per resource). */
export function idKey(id: string): string | number {
  const len = id.length;
  if (len === 0 || len > 15 || id.charCodeAt(0) === 48) return id;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const c = id.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return id;
    n = n * 10 + c;
  }
  return n;
}

function push<K>(m: Map<K, number[]>, k: K, pos: number): void {
  const l = m.get(k);
  if (l) l.push(pos);
  else m.set(k, [pos]);
}

/** First index i with arr[i] >= x. */
function lowerBound(arr: Float64Array, x: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sortUnique(list: number[]): number[] {
  list.sort((a, b) => a - b);
  let w = 0;
  for (let i = 0; i < list.length; i++) if (i === 0 || list[i] !== list[i - 1]) list[w++] = list[i];
  list.length = w;
  return list;
}

/** Union of sorted position lists, sorted and without duplicates. */
function mergeLists(lists: number[][]): number[] {
  if (lists.length === 0) return [];
  if (lists.length === 1) return lists[0];
  if (lists.length === 2) {
    const [a, b] = lists;
    const out: number[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      if (a[i] < b[j]) out.push(a[i++]);
      else if (a[i] > b[j]) out.push(b[j++]);
      else {
        out.push(a[i++]);
        j++;
      }
    }
    while (i < a.length) out.push(a[i++]);
    while (j < b.length) out.push(b[j++]);
    return out;
  }
  const all: number[] = [];
  for (const l of lists) for (const x of l) all.push(x);
  return sortUnique(all);
}
