/**
 * Derives the shipped replica data files from the MedAgentBench reference fixtures in test/fixtures/medagentbench/
 * (provenance and licences in its README.md):
 *
 *   data/medagentbench/patients.ndjson  the 500 Patient resources of `Patient?_count=500` (row 1 of
 *                                        rushilcs_fhir_snapshot.jsonl), exact JSON, server order, one per line
 *   data/medagentbench/anchors.json     per cohort patient and lab code (MG, K, GLU, A1C): the readings that must exist
 *                                        ("points") and the time before which all other readings of that code must lie
 *                                        ("before"), or `none: true` (no reading of that code at all), such that the
 *                                        official grader computes the reference answer of every one of the 300 tasks
 *                                        of expected_answers_v2.DERIVED.json.
 *
 * Run: node --import tsx scripts/derive-anchors.ts [--check]   (cwd = repo root; `--check` fails if the files differ)
 * Deterministic: anchor times and GLU series come from a fixed PRNG stream.
 */
import { readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { Rng } from '../src/worlds/prng.js';

const REF = 'test/fixtures/medagentbench';
const OUT = 'data/medagentbench';
const NOW_MS = Date.parse('2023-11-13T10:15:00+00:00');
const MIN = 60_000;
const WINDOW_START_MS = NOW_MS - 24 * 60 * MIN;

export function fmtTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16) + ':00+00:00';
}
/** Epoch ms of a minute on a given day offset from 2023-11-13 00:00 UTC. */
function at(dayOffset: number, hour: number, minute: number): number {
  return Date.parse('2023-11-13T00:00:00+00:00') + dayOffset * 1440 * MIN + (hour * 60 + minute) * MIN;
}

interface Point {
  value: number;
  time: string;
}
export interface CodeAnchor {
  /** Readings that must exist with exactly these values and effectiveDateTime strings. */
  points: Point[];
  /** Every other reading of this code must have effectiveDateTime strictly before this instant. */
  before?: string;
  /** No reading of this code at all. */
  none?: boolean;
  /** Task ids that constrain this code. */
  sources: string[];
}
type Code = 'MG' | 'K' | 'GLU' | 'A1C';

interface DerivedTask {
  id: string;
  family: string;
  eval_MRN?: string;
  branch: string;
  latest_MG_within_24h?: number | null;
  mean_GLU_within_24h?: number | null;
  latest_GLU?: number | null;
  latest_K_any_time?: number | null;
  latest_A1C?: { value: number; effectiveDateTime: string } | null;
}

/** Smallest count n ≥ minN whose integer sum reproduces `mean` exactly as sum / n in doubles. */
function seriesCount(mean: number, minN: number): number {
  for (let n = minN; n <= 48; n++) {
    const s = Math.round(mean * n);
    if (s / n === mean) return n;
  }
  throw new Error(`no integer series of ≤ 48 readings has mean ${mean}`);
}

/** n integer glucose values (mg/dL) with sum exactly `sum`, the last one fixed to `last` when given. */
function gluSeries(rng: Rng, n: number, sum: number, last: number | undefined): number[] {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const vals: number[] = [];
    const mean = sum / n;
    let rest = sum;
    const free = last === undefined ? n : n - 1;
    if (last !== undefined) rest -= last;
    for (let i = 0; i < free - 1; i++) {
      const v = Math.round(rng.normalClipped(mean, Math.max(4, mean * 0.12), 55, 400));
      vals.push(v);
      rest -= v;
    }
    if (free >= 1) vals.push(rest);
    if (last !== undefined) vals.push(last);
    if (vals.every((v) => v >= 50 && v <= 450) && vals.reduce((a, b) => a + b, 0) === sum) return vals;
  }
  throw new Error(`cannot build a glucose series n=${n} sum=${sum} last=${last}`);
}

export function deriveAnchors(tasks: DerivedTask[], cohort: string[]): Record<string, Partial<Record<Code, CodeAnchor>>> {
  const rng = new Rng('v1|anchors');
  // Collect raw facts per patient and code, checking consistency across families.
  interface Facts {
    mg24?: { v: number | null; src: string[] };
    gluMean?: { v: number | null; src: string[] };
    gluLatest?: { v: number | null; src: string[] };
    k?: { v: number | null; src: string[] };
    a1c?: { v: { value: number; effectiveDateTime: string } | null; src: string[] };
  }
  const facts = new Map<string, Facts>();
  const set = <K extends keyof Facts>(mrn: string, key: K, v: NonNullable<Facts[K]>['v'], id: string) => {
    const f = facts.get(mrn) ?? {};
    facts.set(mrn, f);
    const cur = f[key];
    if (cur) {
      if (JSON.stringify(cur.v) !== JSON.stringify(v)) throw new Error(`${mrn} ${key}: ${id} conflicts with ${cur.src.join(',')}`);
      cur.src.push(id);
    } else (f as Record<string, unknown>)[key] = { v, src: [id] };
  };
  for (const t of tasks) {
    const mrn = t.eval_MRN;
    if (!mrn) continue;
    if (t.family === 'task4' || t.family === 'task5') set(mrn, 'mg24', t.latest_MG_within_24h ?? null, t.id);
    if (t.family === 'task6') set(mrn, 'gluMean', t.mean_GLU_within_24h ?? null, t.id);
    if (t.family === 'task7') set(mrn, 'gluLatest', t.latest_GLU ?? null, t.id);
    if (t.family === 'task9') set(mrn, 'k', t.latest_K_any_time ?? null, t.id);
    if (t.family === 'task10') set(mrn, 'a1c', t.latest_A1C ?? null, t.id);
  }
  const out: Record<string, Partial<Record<Code, CodeAnchor>>> = {};
  for (const mrn of cohort) {
    const f = facts.get(mrn);
    if (!f) continue;
    const a: Partial<Record<Code, CodeAnchor>> = {};
    if (f.mg24) {
      if (f.mg24.v === null) a.MG = { points: [], before: fmtTime(WINDOW_START_MS), sources: f.mg24.src };
      else {
        const t = at(0, rng.int(2, 8), rng.int(0, 59));
        a.MG = { points: [{ value: f.mg24.v, time: fmtTime(t) }], before: fmtTime(t), sources: f.mg24.src };
      }
    }
    if (f.k) {
      if (f.k.v === null) a.K = { points: [], none: true, sources: f.k.src };
      else {
        const t = rng.chance(0.8) ? at(0, rng.int(3, 7), rng.int(0, 59)) : at(-rng.int(1, 4), rng.int(4, 20), rng.int(0, 59));
        a.K = { points: [{ value: f.k.v, time: fmtTime(t) }], before: fmtTime(t), sources: f.k.src };
      }
    }
    if (f.a1c) {
      if (f.a1c.v === null) a.A1C = { points: [], none: true, sources: f.a1c.src };
      else a.A1C = { points: [{ value: f.a1c.v.value, time: f.a1c.v.effectiveDateTime }], before: f.a1c.v.effectiveDateTime, sources: f.a1c.src };
    }
    if (f.gluMean || f.gluLatest) {
      const src = [...(f.gluMean?.src ?? []), ...(f.gluLatest?.src ?? [])];
      const latest = f.gluLatest?.v ?? undefined;
      if (f.gluLatest && f.gluLatest.v === null) throw new Error(`${mrn}: task7 without GLU is not supported`);
      if (f.gluMean && f.gluMean.v !== null) {
        const mean = f.gluMean.v;
        let n = seriesCount(mean, rng.int(3, 6));
        // A single reading cannot carry both a mean and a different latest value.
        if (latest !== undefined && n === 1 && latest !== mean) n = seriesCount(mean, 2);
        const values = gluSeries(rng, n, Math.round(mean * n), latest);
        // Times spread over the window (inclusive start), strictly increasing, the last one before NOW.
        const times: number[] = [];
        const span = 24 * 60 - 20;
        const slots = rng
          .shuffle(Array.from({ length: span }, (_, i) => i + 5))
          .slice(0, n)
          .sort((x, y) => x - y);
        for (const s of slots) times.push(WINDOW_START_MS + s * MIN);
        a.GLU = {
          points: values.map((v, i) => ({ value: v, time: fmtTime(times[i]!) })),
          before: fmtTime(WINDOW_START_MS),
          sources: src,
        };
      } else if (latest !== undefined) {
        // Latest GLU any time; if task6 says "none in 24 h", it lies before the window.
        const t = f.gluMean ? WINDOW_START_MS - rng.int(30, 20 * 60) * MIN : at(0, rng.int(6, 9), rng.int(0, 59));
        a.GLU = { points: [{ value: latest, time: fmtTime(t) }], before: fmtTime(t), sources: src };
      } else {
        a.GLU = { points: [], before: fmtTime(WINDOW_START_MS), sources: src };
      }
    }
    out[mrn] = a;
  }
  return out;
}

function main(): void {
  const check = process.argv.includes('--check');
  const snapshotLine = readFileSync(`${REF}/partial-fhir-data/rushilcs_fhir_snapshot.jsonl`, 'utf8').split('\n')[0]!;
  const row = JSON.parse(snapshotLine) as { url: string; data: { entry: Array<{ resource: { id: string } }> } };
  if (!row.url.endsWith('Patient?_count=500')) throw new Error(`unexpected first snapshot row ${row.url}`);
  const patients = row.data.entry.map((e) => e.resource);
  if (patients.length !== 500) throw new Error(`expected 500 patients, got ${patients.length}`);
  const patientsText = patients.map((p) => JSON.stringify(p)).join('\n') + '\n';

  const derived = JSON.parse(readFileSync(`${REF}/expected_answers_v2.DERIVED.json`, 'utf8')) as { tasks: DerivedTask[] };
  const cohort = patients.slice(0, 100).map((p) => p.id);
  const anchors = deriveAnchors(derived.tasks, cohort);
  const anchorsText =
    JSON.stringify(
      {
        _provenance:
          'Derived by scripts/derive-anchors.ts from test/fixtures/medagentbench/expected_answers_v2.DERIVED.json (MIT, see LICENSE-stanfordmlgroup-MedAgentBench.txt). ' +
          'Per cohort patient and lab code: readings that must exist (points) and the instant before which every other reading of that code must lie (before), or none = no reading at all.',
        now: '2023-11-13T10:15:00+00:00',
        cohort,
        patients: anchors,
      },
      null,
      1,
    ) + '\n';

  if (check) {
    const same = readFileSync(`${OUT}/patients.ndjson`, 'utf8') === patientsText && readFileSync(`${OUT}/anchors.json`, 'utf8') === anchorsText;
    if (!same) {
      process.stderr.write('derive-anchors: shipped files differ from a fresh derivation\n');
      process.exit(1);
    }
    process.stdout.write('derive-anchors: shipped files are up to date\n');
    return;
  }
  mkdirSync(OUT, { recursive: true });
  writeFileSync(`${OUT}/patients.ndjson`, patientsText);
  writeFileSync(`${OUT}/anchors.json`, anchorsText);
  copyFileSync(`${REF}/partial-fhir-data/LICENSE-rushilcs-MedAgentBench.txt`, `${OUT}/LICENSE-rushilcs-MedAgentBench.txt`);
  process.stdout.write(`derive-anchors: wrote ${patients.length} patients and anchors for ${Object.keys(anchors).length} cohort patients\n`);
}

if (process.argv[1] && /derive-anchors\.ts$/.test(process.argv[1])) main();
