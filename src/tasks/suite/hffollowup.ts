/**
 * hffollowup — heart-failure follow-up within 7 days of discharge (clinical suite, scheduling; docs/tasks.md).
 *
 * Rule: 2022 AHA/ACC/HFSA Guideline for the Management of Heart Failure (Heidenreich et al., Circulation
 * 2022;145:e895–e1032), §9.6 recommendation 4 (COR 2a, LOE B-NR): after a hospitalisation for worsening heart
 * failure, an early follow-up, generally within 7 days of discharge, is reasonable. The task's context states the
 * operational window: a visit starting after now and after the discharge, at most 7 × 24 h after the discharge.
 *
 * The world plants, on most cohort patients, a cardiology follow-up referral written at discharge (its authoredOn the
 * discharge time, its performer the cardiologist, its requester the discharging hospitalist), both practitioners'
 * schedules and 20-minute slots (unsorted in server order, the decisive slot past the first page of 20), and
 * appointments. Traps: a free slot before now, busy-tentative and entered-in-error slots earlier in the window, a
 * free slot 20 minutes after the window, the hospitalist's free slots earlier in the window, cancelled and
 * entered-in-error appointments. The grader replays the episode's writes (`replayEndState`) and checks the record.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { SNOMED } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import type { PlantPatient } from '../../worlds/synthetic.js';
import { type Checkpoint, checkpoint } from '../checkpoints.js';
import {
  alwaysPost,
  generateOver,
  makeTask,
  mrnDetector,
  mrnPlaceholders,
  plainFactoryHints,
  runScript,
  type ScriptIO,
  taskMrn,
  worldJson,
} from '../common.js';
import type { EndState } from '../endstate.js';
import { gradeSuite, ms, sameInstant, sameJson, shuffle, without } from './kit.js';
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';

export const HF_TEMPLATE =
  'Patient {MRN} was recently discharged after a hospitalisation for heart failure. Book the follow-up visit with the cardiologist on the discharge referral within 7 days of discharge, as the 2022 AHA/ACC/HFSA heart failure guideline recommends, and answer with the outcome and its time.\n';
export const HF_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. At discharge a cardiology follow-up referral was written (ServiceRequest, SNOMED 183519002, status active): its authoredOn is the discharge time and its performer the cardiologist to see. " +
  'Each practitioner has one active Schedule (actor Practitioner/<id>) of 20-minute Slots. The follow-up window: a start after now and after the discharge, and at most 7 days (168 hours) after the discharge. ' +
  'If the patient already has an Appointment with that cardiologist starting in the window (status other than cancelled, noshow or entered-in-error), book nothing and answer ["already-booked", its start]. ' +
  'Otherwise book the earliest free Slot of the cardiologist\'s Schedule that starts in the window: POST an Appointment (status booked, slot [{"reference": "Slot/<id>"}], start and end equal to the slot\'s, participant: the patient (actor Patient/<MRN>) and the cardiologist (actor Practitioner/<id>), each with status accepted), ' +
  'then PUT the Slot with status busy and nothing else changed; answer ["booked", the slot\'s start]. ' +
  'If no free slot of the cardiologist starts in the window, book nothing and answer ["no-slot", the start of the cardiologist\'s first free slot after the window]. Times are compared as instants.';

export const REFERRAL_SNOMED = '183519002';
export const REFERRAL_DISPLAY = 'Referral to cardiology service';
export const HF_SNOMED = '84114007';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** The follow-up window's length after discharge (inclusive end). */
export const WINDOW_MS = 7 * 24 * 60 * MINUTE;
const SLOT_MS = 20 * MINUTE;
/** Appointment statuses that do not count as a booked follow-up. */
export const NOT_BOOKED_STATUSES: readonly string[] = ['cancelled', 'noshow', 'entered-in-error'];

export type HfBranch = 'book' | 'already_booked' | 'no_slot';
const BRANCHES: readonly HfBranch[] = ['book', 'already_booked', 'no_slot'];

/** Checkpoints per branch, in the order an expert works. */
export const HF_CHECKPOINTS: Readonly<Record<HfBranch, readonly string[]>> = {
  book: ['finished', 'answer', 'appointment_booked', 'appointment_practitioner', 'appointment_slot', 'appointment_payload', 'slot_busy', 'no_other_writes'],
  already_booked: ['finished', 'answer', 'no_booking', 'no_other_writes'],
  no_slot: ['finished', 'answer', 'no_booking', 'no_other_writes'],
};

const LABELS: Record<HfBranch, string> = { book: 'booked', already_booked: 'already-booked', no_slot: 'no-slot' };

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

type R = Record<string, unknown>;
const entriesOf = (bundle: unknown): R[] => {
  const e = (bundle as { entry?: unknown } | undefined)?.entry;
  return Array.isArray(e) ? e.map((x) => (x as { resource?: R })?.resource).filter((r): r is R => !!r && typeof r === 'object') : [];
};
const codes = (cc: unknown): unknown[] => {
  const c = (cc as { coding?: unknown } | undefined)?.coding;
  return Array.isArray(c) ? c.map((x) => (x as { code?: unknown })?.code) : [];
};
/** `Practitioner/12`, `12` or an absolute URL ending in `/Practitioner/12` → `12` (for the given type). */
function refId(ref: unknown, type: string): string | null {
  const s = (ref as { reference?: unknown } | undefined)?.reference;
  if (typeof s !== 'string') return null;
  const m = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})$`).exec(s);
  return m ? m[1]! : null;
}

/** The active cardiology referral written last (the discharge one). */
export function dischargeReferral(bundle: unknown): R | null {
  let best: R | null = null;
  for (const r of entriesOf(bundle)) {
    if (r.status !== 'active' || !codes(r.code).includes(REFERRAL_SNOMED) || !Number.isFinite(ms(r.authoredOn))) continue;
    if (!best || ms(r.authoredOn) > ms(best.authoredOn)) best = r;
  }
  return best;
}

/** How the window is read (the rule's by default; tests plug in trap readings). */
export interface WindowRule {
  now?: number;
  windowMs?: number;
  notBooked?: readonly string[];
}

export interface SlotPick {
  id: string;
  start: string;
  end: string;
}

/** What the window holds: the counting appointment, the earliest free slot in the window, the first free one after. */
export function readWindow(
  discharge: number,
  appointments: readonly R[],
  slots: readonly R[],
  rule: WindowRule = {},
): { existing: { id: string; start: string } | null; earliest: SlotPick | null; after: SlotPick | null } {
  const end = discharge + (rule.windowMs ?? WINDOW_MS);
  const from = Math.max(rule.now ?? NOW_MS, discharge);
  const notBooked = rule.notBooked ?? NOT_BOOKED_STATUSES;
  let existing: { id: string; start: string } | null = null;
  for (const a of appointments) {
    const t = ms(a.start);
    if (notBooked.includes(String(a.status)) || !(t > from && t <= end)) continue;
    if (!existing || t < ms(existing.start)) existing = { id: String(a.id), start: String(a.start) };
  }
  let earliest: SlotPick | null = null;
  let after: SlotPick | null = null;
  for (const s of slots) {
    const t = ms(s.start);
    if (s.status !== 'free' || !Number.isFinite(t)) continue;
    const pick = { id: String(s.id), start: String(s.start), end: String(s.end) };
    if (t > from && t <= end) {
      if (!earliest || t < ms(earliest.start)) earliest = pick;
    } else if (t > end && (!after || t < ms(after.start))) after = pick;
  }
  return { existing, earliest, after };
}

const referralQuery = (mrn: string) => `ServiceRequest?patient=${mrn}&code=${REFERRAL_SNOMED}&_count=5000`;
const scheduleQuery = (practitioner: string) => `Schedule?actor=Practitioner/${practitioner}&active=true`;
const appointmentQuery = (mrn: string, practitioner: string) => `Appointment?patient=${mrn}&practitioner=Practitioner/${practitioner}&_count=5000`;
const slotQuery = (schedule: string) => `Slot?schedule=Schedule/${schedule}&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface HfFacts {
  branch: HfBranch | null;
  discharge: string | null;
  cardiologist: string | null;
  hospitalist: string | null;
  schedule: string | null;
  existing: { id: string; start: string } | null;
  slot: SlotPick | null;
  after: SlotPick | null;
  /** The answer's time. */
  time: string | null;
}

export async function readHfFacts(world: WorldAccess, mrn: string): Promise<HfFacts> {
  const none: HfFacts = {
    branch: null,
    discharge: null,
    cardiologist: null,
    hospitalist: null,
    schedule: null,
    existing: null,
    slot: null,
    after: null,
    time: null,
  };
  const ref = dischargeReferral(await worldJson(world, referralQuery(mrn)));
  const performers = ref?.performer;
  const cardiologist = Array.isArray(performers) ? refId(performers[0], 'Practitioner') : null;
  if (!ref || !cardiologist) return none;
  const discharge = ms(ref.authoredOn);
  const schedules = entriesOf(await worldJson(world, scheduleQuery(cardiologist)));
  if (schedules.length !== 1) return none;
  const schedule = String(schedules[0]!.id);
  const appts = entriesOf(await worldJson(world, appointmentQuery(mrn, cardiologist)));
  const slots = entriesOf(await worldJson(world, slotQuery(schedule)));
  const w = readWindow(discharge, appts, slots);
  const branch: HfBranch | null = w.existing ? 'already_booked' : w.earliest ? 'book' : w.after ? 'no_slot' : null;
  const time = branch === 'already_booked' ? w.existing!.start : branch === 'book' ? w.earliest!.start : branch === 'no_slot' ? w.after!.start : null;
  return {
    branch,
    discharge: String(ref.authoredOn),
    cardiologist,
    hospitalist: refId(ref.requester, 'Practitioner'),
    schedule,
    existing: w.existing,
    slot: w.earliest,
    after: w.after,
    time,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads and the expert policy

export function appointmentFor(mrn: string, practitioner: string, slot: SlotPick): Record<string, unknown> {
  return {
    resourceType: 'Appointment',
    status: 'booked',
    serviceType: [{ coding: [{ system: SNOMED, code: '394579002', display: 'Cardiology' }], text: 'Cardiology' }],
    reasonCode: [{ coding: [{ system: SNOMED, code: HF_SNOMED, display: 'Heart failure' }], text: 'Heart failure follow-up after discharge' }],
    description: 'Heart failure follow-up within 7 days of discharge',
    slot: [{ reference: `Slot/${slot.id}` }],
    start: slot.start,
    end: slot.end,
    created: NOW_ISO,
    participant: [
      { actor: { reference: `Patient/${mrn}` }, status: 'accepted' },
      { actor: { reference: `Practitioner/${practitioner}` }, status: 'accepted' },
    ],
  };
}

/** How a policy finds the free slots of a schedule (the expert's; tests plug in trap readers). */
export type SlotReader = (io: ScriptIO, schedule: string) => R[];
/** Variant `scan`: every slot of the schedule (`_count=5000`), filtered here. */
export const scanSlots: SlotReader = (io, schedule) => entriesOf(io.json(`${io.apiBase}${slotQuery(schedule)}`));
/** Variant `sorted`: the free slots only, in start order. */
export const sortedSlots: SlotReader = (io, schedule) =>
  entriesOf(io.json(`${io.apiBase}Slot?schedule=Schedule/${schedule}&status=free&_sort=start&_count=5000`));

const VARIANTS = ['scan', 'sorted'] as const;

/** How a policy reads the record: the expert's by default; tests plug in trap readings. */
export interface HfReading {
  slots?: SlotReader;
  rule?: WindowRule;
  /** Whose schedule: the referral's performer (the cardiologist) or its requester (the discharging hospitalist). */
  practitioner?: 'performer' | 'requester';
}

/** The expert's script: referral → schedule → appointments → slots → book or not → answer. */
export function hfScript(reading: HfReading = {}): (io: ScriptIO, task: TaskCase) => void {
  const readSlots = reading.slots ?? scanSlots;
  return (io, task) => {
    const mrn = taskMrn(task, [HF_TEMPLATE, ...hffollowup.paraphrases]);
    const ref = dischargeReferral(io.json(`${io.apiBase}ServiceRequest?patient=${mrn}&code=${REFERRAL_SNOMED}&status=active`));
    const performers = ref?.performer;
    const cardiologist =
      reading.practitioner === 'requester' ? refId(ref?.requester, 'Practitioner') : Array.isArray(performers) ? refId(performers[0], 'Practitioner') : null;
    if (!ref || !cardiologist) io.finish([]);
    const schedule = entriesOf(io.json(`${io.apiBase}${scheduleQuery(cardiologist!)}`))[0];
    const appts = entriesOf(io.json(`${io.apiBase}${appointmentQuery(mrn, cardiologist!)}`));
    const slots = schedule ? readSlots(io, String(schedule.id)) : [];
    const w = readWindow(ms(ref!.authoredOn), appts, slots, reading.rule);
    if (w.existing) io.finish([LABELS.already_booked, w.existing.start]);
    if (!w.earliest) io.finish(w.after ? [LABELS.no_slot, w.after.start] : []);
    const slot = slots.find((s) => String(s.id) === w.earliest!.id)!;
    io.post(`${io.apiBase}Appointment`, appointmentFor(mrn, cardiologist!, w.earliest!));
    io.put(`${io.apiBase}Slot/${w.earliest!.id}`, { ...slot, status: 'busy' });
    io.finish([LABELS.book, w.earliest!.start]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** A slot time `YYYY-MM-DDTHH:MM` (UTC) → epoch ms. */
const at = (s: string): number => Date.parse(`${s}:00Z`);
type SlotStatus = 'free' | 'busy' | 'busy-tentative' | 'busy-unavailable' | 'entered-in-error';

/** One planted scenario (times UTC, on the 20-minute clinic grid, Mon–Fri 08:00–16:00). */
interface HfScenario {
  discharge: string;
  edge?: string;
  /** The cardiologist's non-busy slots (the background is busy). */
  slots: Array<[string, SlotStatus]>;
  /** The cardiologist's appointments with the patient ([start, status]); their slots are busy unless listed above. */
  appointments?: Array<[string, 'booked' | 'cancelled' | 'entered-in-error']>;
}
/** Dealt round-robin over the planted patients: branches book 4 / already 3 / no-slot 3. */
const SCENARIOS: readonly HfScenario[] = [
  {
    // book 2023-11-15T13:40; a free slot before now, a busy-tentative and an entered-in-error slot earlier in the window
    discharge: '2023-11-10T14:20',
    slots: [
      ['2023-11-13T09:00', 'free'],
      ['2023-11-13T11:00', 'entered-in-error'],
      ['2023-11-14T08:20', 'busy-tentative'],
      ['2023-11-15T13:40', 'free'],
      ['2023-11-16T09:20', 'free'],
      ['2023-11-17T14:40', 'free'],
    ],
  },
  {
    // already booked 2023-11-16T10:40, a free slot earlier in the window tempts a second booking
    discharge: '2023-11-10T14:20',
    slots: [
      ['2023-11-14T09:20', 'free'],
      ['2023-11-17T15:00', 'free'],
    ],
    appointments: [['2023-11-16T10:40', 'booked']],
  },
  {
    // no slot: the first free one is 20 minutes after the window; a free slot before now
    discharge: '2023-11-10T14:20',
    edge: '7d+20min',
    slots: [
      ['2023-11-13T09:20', 'free'],
      ['2023-11-14T13:00', 'busy-tentative'],
      ['2023-11-16T11:40', 'entered-in-error'],
      ['2023-11-17T14:40', 'free'],
      ['2023-11-21T10:00', 'free'],
    ],
  },
  {
    // book exactly at the window's end (counts); the next free slot is 20 minutes later
    discharge: '2023-11-10T11:00',
    edge: '7d00',
    slots: [
      ['2023-11-15T09:40', 'busy-tentative'],
      ['2023-11-16T15:00', 'entered-in-error'],
      ['2023-11-17T11:00', 'free'],
      ['2023-11-17T11:20', 'free'],
    ],
  },
  {
    // already booked 2023-11-13T14:00; a cancelled appointment earlier does not count
    discharge: '2023-11-11T15:40',
    slots: [
      ['2023-11-13T11:40', 'busy-unavailable'],
      ['2023-11-15T11:20', 'free'],
      ['2023-11-17T08:00', 'free'],
    ],
    appointments: [
      ['2023-11-13T11:40', 'cancelled'],
      ['2023-11-13T14:00', 'booked'],
    ],
  },
  {
    // no slot: the first free one is eight days after discharge
    discharge: '2023-11-12T10:00',
    slots: [
      ['2023-11-13T08:40', 'free'],
      ['2023-11-15T10:20', 'busy-tentative'],
      ['2023-11-20T13:00', 'free'],
      ['2023-11-22T09:00', 'free'],
    ],
  },
  {
    // book the slot right after now (10:20); one before now is free too
    discharge: '2023-11-12T10:00',
    edge: 'now+5min',
    slots: [
      ['2023-11-13T08:40', 'free'],
      ['2023-11-13T10:20', 'free'],
      ['2023-11-14T14:00', 'free'],
      ['2023-11-16T08:00', 'free'],
    ],
  },
  {
    // already booked 2023-11-17T13:20; an entered-in-error appointment earlier does not count
    discharge: '2023-11-12T10:00',
    slots: [['2023-11-14T15:00', 'free']],
    appointments: [
      ['2023-11-14T13:00', 'entered-in-error'],
      ['2023-11-17T13:20', 'booked'],
    ],
  },
  {
    // book 2023-11-16T11:00, the slot a cancelled appointment freed; a free slot exactly at the window's end
    discharge: '2023-11-13T08:40',
    slots: [
      ['2023-11-14T09:00', 'busy-tentative'],
      ['2023-11-15T10:00', 'entered-in-error'],
      ['2023-11-16T11:00', 'free'],
      ['2023-11-17T15:20', 'free'],
      ['2023-11-20T08:40', 'free'],
    ],
    appointments: [['2023-11-16T11:00', 'cancelled']],
  },
  {
    // no slot: discharged this morning; the first free slot is 20 minutes after the window
    discharge: '2023-11-13T08:40',
    edge: '7d+20min',
    slots: [
      ['2023-11-14T10:40', 'busy-tentative'],
      ['2023-11-20T09:00', 'free'],
      ['2023-11-24T14:20', 'free'],
    ],
  },
];
/** Every eighth patient has no heart-failure discharge (nothing planted). */
const NONE_EVERY = 8;
/** The decisive slot's position among the cardiologist's slots in server order is at least this. */
const FIRST_PAGE = 20;
const CLINIC_DAYS = [
  '2023-11-13',
  '2023-11-14',
  '2023-11-15',
  '2023-11-16',
  '2023-11-17',
  '2023-11-20',
  '2023-11-21',
  '2023-11-22',
  '2023-11-24',
  '2023-11-27',
  '2023-11-28',
  '2023-11-29',
  '2023-11-30',
  '2023-12-01',
];
const GRID: readonly string[] = CLINIC_DAYS.flatMap((d) =>
  Array.from({ length: 24 }, (_, k) => `${d}T${String(8 + Math.floor(k / 3)).padStart(2, '0')}:${String((k % 3) * 20).padStart(2, '0')}`),
);
const CARDIOLOGISTS: ReadonlyArray<[string, string, 'male' | 'female']> = [
  ['Okafor', 'Adaeze', 'female'],
  ['Lindqvist', 'Erik', 'male'],
  ['Moreau', 'Camille', 'female'],
  ['Haddad', 'Samir', 'male'],
  ['Tanaka', 'Yuki', 'female'],
  ['Novak', 'Pavel', 'male'],
];
const HOSPITALISTS: ReadonlyArray<[string, string, 'male' | 'female']> = [
  ['Reyes', 'Lucia', 'female'],
  ['Brennan', 'Owen', 'male'],
  ['Achebe', 'Chinua', 'male'],
  ['Dubois', 'Mathilde', 'female'],
];

/** The scenario a patient gets (null: nothing planted), dealt round-robin over the planted patients. */
function scenarioOf(index: number): HfScenario | null {
  if (index % NONE_EVERY === NONE_EVERY - 1) return null;
  return SCENARIOS[(index - Math.floor(index / NONE_EVERY)) % SCENARIOS.length]!;
}

const iso = (s: string) => fmtMinute(at(s));

function practitioner([family, given, gender]: [string, string, 'male' | 'female'], npi: string, specialty: [string, string]): Resource {
  return {
    resourceType: 'Practitioner',
    active: true,
    identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: npi }],
    name: [{ use: 'official', family, given: [given], prefix: ['Dr.'] }],
    gender,
    qualification: [{ code: { coding: [{ system: SNOMED, code: specialty[0], display: specialty[1] }], text: specialty[1] } }],
  };
}

function schedule(practitionerId: number, display: string, service: [string, string]): Resource {
  return {
    resourceType: 'Schedule',
    active: true,
    serviceType: [{ coding: [{ system: SNOMED, code: service[0], display: service[1] }], text: service[1] }],
    actor: [{ reference: `Practitioner/${practitionerId}`, display }],
    planningHorizon: { start: '2023-11-13T08:00:00+00:00', end: '2023-12-01T16:00:00+00:00' },
  };
}

const slotResource = (scheduleId: number, start: string, status: SlotStatus): Resource => ({
  resourceType: 'Slot',
  schedule: { reference: `Schedule/${scheduleId}` },
  status,
  start: iso(start),
  end: fmtMinute(at(start) + SLOT_MS),
});

/**
 * A patient's records: the cardiologist and the discharging hospitalist, their schedules, their slots (the
 * cardiologist's unsorted with the decisive one past the first page), the patient's appointments, the referral.
 */
function plantHf(p: PlantPatient, rng: Rng): Resource[] {
  const dealt = scenarioOf(p.index);
  if (!dealt) return [];
  // each patient's copy of its scenario is moved along the clinic day, so that no answer time repeats across patients
  const shifts = allowedShifts(dealt);
  const sc = shiftScenario(dealt, shifts[rng.int(0, shifts.length - 1)]!);
  const base = p.nextId;
  const cardio = CARDIOLOGISTS[rng.int(0, CARDIOLOGISTS.length - 1)]!;
  const hosp = HOSPITALISTS[rng.int(0, HOSPITALISTS.length - 1)]!;
  const npi = (k: number) => String(1_000_000_000 + (((p.index * 2 + k) * 7919) % 900_000_000));
  const out: Resource[] = [
    practitioner(cardio, npi(0), ['17561000', 'Cardiologist']),
    practitioner(hosp, npi(1), ['309294001', 'Hospital physician']),
    schedule(base, `Dr. ${cardio[1]} ${cardio[0]}`, ['394579002', 'Cardiology']),
    schedule(base + 1, `Dr. ${hosp[1]} ${hosp[0]}`, ['394802001', 'General medicine']),
  ];
  const discharge = at(sc.discharge);
  const windowEnd = discharge + WINDOW_MS;
  // the cardiologist's slots: the scenario's, its appointments' (busy unless listed), busy background
  const listed = new Map(sc.slots);
  for (const [start] of sc.appointments ?? []) if (!listed.has(start)) listed.set(start, 'busy');
  const background = shuffle(
    GRID.filter((t) => !listed.has(t)),
    rng,
  ).slice(0, rng.int(36, 56));
  // the decisive slot (the booked appointment's, the earliest free in the window, or the first free after) goes past
  // the first page of the unsorted search
  const decisiveTime = decisiveOf(sc, discharge, windowEnd);
  const cardioSlots: Array<[string, SlotStatus]> = shuffle(
    [...[...listed].filter(([t]) => t !== decisiveTime), ...background.map((t): [string, SlotStatus] => [t, rng.chance(0.15) ? 'busy-unavailable' : 'busy'])],
    rng,
  );
  const pos = rng.int(Math.min(FIRST_PAGE, cardioSlots.length), cardioSlots.length);
  cardioSlots.splice(pos, 0, [decisiveTime, listed.get(decisiveTime)!]);
  const cardioSchedule = base + 2;
  const slotIds = new Map<string, number>();
  cardioSlots.forEach(([t], k) => slotIds.set(t, base + 4 + k));
  out.push(...cardioSlots.map(([t, s]) => slotResource(cardioSchedule, t, s)));
  // the hospitalist's slots: free ones early in the window (a decoy), the rest busy
  const early = GRID.filter((t) => at(t) > NOW_MS && at(t) > discharge).slice(0, 3);
  const hospSlots = shuffle(
    [
      ...early.map((t): [string, SlotStatus] => [t, 'free']),
      ...shuffle(
        GRID.filter((t) => !early.includes(t)),
        rng,
      )
        .slice(0, 22)
        .map((t): [string, SlotStatus] => [t, 'busy']),
    ],
    rng,
  );
  out.push(...hospSlots.map(([t, s]) => slotResource(base + 3, t, s)));
  for (const [start, status] of sc.appointments ?? []) {
    out.push({
      resourceType: 'Appointment',
      status,
      serviceType: [{ coding: [{ system: SNOMED, code: '394579002', display: 'Cardiology' }], text: 'Cardiology' }],
      description: 'Heart failure follow-up',
      slot: [{ reference: `Slot/${slotIds.get(start)}` }],
      start: iso(start),
      end: fmtMinute(at(start) + SLOT_MS),
      created: fmtMinute(discharge + 30 * MINUTE),
      participant: [
        { actor: { reference: `Patient/${p.mrn}` }, status: 'accepted' },
        { actor: { reference: `Practitioner/${base}`, display: `Dr. ${cardio[1]} ${cardio[0]}` }, status: 'accepted' },
      ],
    });
  }
  const referral = (status: string, authored: number): Resource => ({
    resourceType: 'ServiceRequest',
    status,
    intent: 'order',
    priority: 'routine',
    code: { coding: [{ system: SNOMED, code: REFERRAL_SNOMED, display: REFERRAL_DISPLAY }], text: 'Cardiology follow-up after heart failure admission' },
    subject: { reference: `Patient/${p.mrn}` },
    authoredOn: fmtMinute(authored),
    requester: { reference: `Practitioner/${base + 1}`, display: `Dr. ${hosp[1]} ${hosp[0]}` },
    performer: [{ reference: `Practitioner/${base}`, display: `Dr. ${cardio[1]} ${cardio[0]}` }],
    reasonCode: [{ coding: [{ system: SNOMED, code: HF_SNOMED, display: 'Heart failure' }], text: 'Heart failure' }],
    note: [{ text: 'Discharged home after an admission for decompensated heart failure; follow-up within 7 days.' }],
  });
  // an older referral from a previous admission, completed
  const older = referral('completed', discharge - rng.int(90, 200) * 1440 * MINUTE);
  out.push(...(rng.chance(0.5) ? [older, referral('active', discharge)] : [referral('active', discharge), older]));
  return out;
}

const SHIFT_STEP = 20 * MINUTE;
const minuteOfDay = (t: string): number => Number(t.slice(11, 13)) * 60 + Number(t.slice(14, 16));
const shiftTime = (t: string, k: number): string => fmtMinute(at(t) + k * SHIFT_STEP).slice(0, 16);

/**
 * The 20-minute steps a scenario can move by as a whole (discharge, slots and appointments together, so its window
 * edges stay exact): every time stays on the clinic grid (08:00–15:40) and on its side of now. A scenario whose edge
 * is now itself does not move.
 */
function allowedShifts(sc: HfScenario): number[] {
  if (sc.edge?.startsWith('now')) return [0];
  const times = [...sc.slots.map(([t]) => t), ...(sc.appointments ?? []).map(([t]) => t)];
  const out: number[] = [];
  for (let k = -12; k <= 12; k++) {
    const ok = times.every((t) => {
      const m = minuteOfDay(t) + k * 20;
      return m >= 8 * 60 && m <= 15 * 60 + 40 && at(t) > NOW_MS === at(t) + k * SHIFT_STEP > NOW_MS;
    });
    if (ok) out.push(k);
  }
  return out;
}

function shiftScenario(sc: HfScenario, k: number): HfScenario {
  if (k === 0) return sc;
  return {
    ...sc,
    discharge: shiftTime(sc.discharge, k),
    slots: sc.slots.map(([t, st]) => [shiftTime(t, k), st]),
    ...(sc.appointments
      ? { appointments: sc.appointments.map(([t, st]) => [shiftTime(t, k), st] as [string, 'booked' | 'cancelled' | 'entered-in-error']) }
      : {}),
  };
}

/** The scenario's decisive slot time: the booked appointment's, else the earliest free in the window, else the first free after. */
function decisiveOf(sc: HfScenario, discharge: number, windowEnd: number): string {
  const from = Math.max(NOW_MS, discharge);
  const booked = (sc.appointments ?? []).filter(([t, s]) => s === 'booked' && at(t) > from && at(t) <= windowEnd).map(([t]) => t);
  if (booked.length) return booked.sort()[0]!;
  const free = sc.slots
    .filter(([, s]) => s === 'free')
    .map(([t]) => t)
    .sort();
  return free.find((t) => at(t) > from && at(t) <= windowEnd) ?? free.find((t) => at(t) > windowEnd)!;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** The answer `[label, time]`, or why there is none (not JSON: protocol; another shape: lookup). */
function answerOf(result: TaskOutput['result']): { label: string; time: string } | { problem: string; cls: 'protocol' | 'lookup' } {
  if (typeof result !== 'string') return { problem: 'no answer', cls: 'protocol' };
  let v: unknown;
  try {
    v = JSON.parse(result);
  } catch {
    return { problem: 'the answer is not JSON', cls: 'protocol' };
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string')
    return { problem: 'the answer is not [outcome, time]', cls: 'lookup' };
  return { label: v[0], time: v[1] };
}

async function gradeEndState(output: TaskOutput, facts: HfFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const checks: Checkpoint[] = [];
  const want = [LABELS[branch], facts.time!];
  const a = answerOf(output.result);
  checks.push(
    'label' in a
      ? checkpoint('answer', 'lookup', a.label.trim().toLowerCase() === want[0] && sameInstant(a.time, want[1]!), want, [a.label, a.time])
      : checkpoint('answer', a.cls, false, want, output.result, a.problem),
  );
  const appts = await state.created('Appointment');
  const slotUpdates = await state.updated('Slot');
  const touched = state.touched();
  const createdKeys = new Set(state.writes.filter((w) => w.method === 'POST' && w.id).map((w) => `${w.type}/${w.id}`));
  if (branch !== 'book') {
    checks.push(
      checkpoint('no_booking', 'decision', appts.length === 0 && slotUpdates.length === 0, 'no Appointment created, no Slot changed', [
        ...appts.map((r) => `Appointment/${r.id}`),
        ...slotUpdates.map((u) => `Slot/${u.after.id}`),
      ]),
    );
    // bookings are judged by no_booking; anything else written is a stray write
    const stray = touched.filter((k) => !k.startsWith('Slot/') && !(k.startsWith('Appointment/') && createdKeys.has(k)));
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  const slot = facts.slot!;
  const appt = appts[0];
  checks.push(checkpoint('appointment_booked', 'decision', !!appt, 'an Appointment created', appts.length));
  const parts = (Array.isArray(appt?.participant) ? appt.participant : []) as Array<{ actor?: unknown; status?: unknown }>;
  const practitioners = parts.map((x) => refId(x.actor, 'Practitioner')).filter((x): x is string => x !== null);
  checks.push(
    checkpoint(
      'appointment_practitioner',
      'lookup',
      !!appt && practitioners.includes(facts.cardiologist!) && practitioners.every((x) => x === facts.cardiologist),
      `Practitioner/${facts.cardiologist}`,
      practitioners.map((x) => `Practitioner/${x}`),
      facts.hospitalist && practitioners.includes(facts.hospitalist) ? 'the discharging hospitalist, not the cardiologist' : undefined,
    ),
  );
  const apptSlots = (Array.isArray(appt?.slot) ? appt.slot : []).map((s) => refId(s, 'Slot'));
  checks.push(
    checkpoint(
      'appointment_slot',
      'lookup',
      !!appt && apptSlots.length === 1 && apptSlots[0] === slot.id,
      `Slot/${slot.id}`,
      apptSlots.map((x) => `Slot/${x}`),
      'the earliest free slot of the cardiologist in the window (a later one: paging or unsorted results; an earlier one: outside the window or not free)',
    ),
  );
  const patientIn = parts.some((x) => refId(x.actor, 'Patient') === mrn);
  checks.push(
    checkpoint(
      'appointment_payload',
      'payload',
      !!appt && appt.status === 'booked' && sameInstant(appt.start, slot.start) && sameInstant(appt.end, slot.end) && patientIn,
      { status: 'booked', start: slot.start, end: slot.end, participant: `Patient/${mrn}` },
      appt && { status: appt.status, start: appt.start, end: appt.end, patient: patientIn },
    ),
  );
  const before = await state.readBase('Slot', slot.id);
  const after = await state.read('Slot', slot.id);
  checks.push(
    checkpoint(
      'slot_busy',
      'payload',
      after?.status === 'busy' && sameJson(without(before, 'meta', 'status'), without(after, 'meta', 'status')),
      { status: 'busy', unchanged: 'every other field' },
      after && {
        status: after.status,
        changed: Object.keys({ ...without(before, 'meta', 'status'), ...without(after, 'meta', 'status') }).filter((k) => !sameJson(before?.[k], after?.[k])),
      },
    ),
  );
  const allowed = new Set([`Slot/${slot.id}`, ...(appt ? [`Appointment/${appt.id}`] : [])]);
  const stray = touched.filter((k) => !allowed.has(k));
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Arrange the 7-day post-discharge heart-failure visit for {MRN} with the cardiologist on the discharge referral: the earliest free slot within 7 days of discharge, booked and marked busy; do not double-book and do not book outside the window. Answer [outcome, time].\n',
  "Transition-of-care scheduling for {MRN}: per the 2022 AHA/ACC/HFSA guideline, a cardiology follow-up should happen within 7 days of the recent heart-failure discharge. Book the earliest available slot with the referral's cardiologist if none is booked yet, and report [outcome, time].\n",
  '{MRN} went home after a heart failure admission. Make sure a visit with the cardiologist from the discharge referral happens within 7 days of discharge (book the earliest free slot if needed) and reply with the outcome and its time.\n',
];

export const hffollowup: SuiteFamily<'hffollowup'> = {
  id: 'hffollowup',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Heart-failure follow-up within 7 days of discharge',
  kind: 'action',
  rule: {
    name: 'Early follow-up, generally within 7 days of hospital discharge, after hospitalisation for worsening heart failure (COR 2a, LOE B-NR)',
    source:
      'Heidenreich PA, Bozkurt B, Aguilar D, et al. 2022 AHA/ACC/HFSA Guideline for the Management of Heart Failure. Circulation 2022;145:e895–e1032, doi:10.1161/CIR.0000000000001063 (§9.6, recommendation 4)',
  },
  instructionTemplates: [HF_TEMPLATE],
  context: HF_CONTEXT,
  branches: BRANCHES,
  checkpoints: HF_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 5, max: 7 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'hffollowup', version: 'hffollowup-v2', plant: plantHf },
  detector: mrnDetector({ retrievedValue: true, latestValue: false }),
  factory: plainFactoryHints(0),
  audit: {
    // nothing found: no slot (without a time, which would need the record)
    nothingFound: ['no-slot'],
    // blind: an Appointment for the patient alone (booking a slot needs the schedule, which takes reads)
    alwaysAct: alwaysPost([HF_TEMPLATE, ...PARAPHRASES], (mrn) => [
      {
        resource: 'Appointment',
        payload: {
          resourceType: 'Appointment',
          status: 'booked',
          description: 'Heart failure follow-up within 7 days of discharge',
          participant: [{ actor: { reference: `Patient/${mrn}` }, status: 'accepted' }],
        },
      },
    ]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('hffollowup.instruction: mrn is required');
    return HF_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('hffollowup', opts, async (mrn) => {
      const f = await readHfFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = {
        discharge: f.discharge,
        cardiologist: f.cardiologist,
        hospitalist: f.hospitalist,
        schedule: f.schedule,
        existing: f.existing,
        slot: f.slot,
        after: f.after,
        time: f.time,
      };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, hffollowup.instruction({ mrn }), HF_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, hfScript({ slots: variant === 'sorted' ? sortedSlots : scanSlots }));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [HF_TEMPLATE, ...PARAPHRASES],
      read: readHfFacts,
      branch: (f) => (f.branch !== null ? { branch: f.branch } : { why: 'no heart-failure follow-up task' }),
      reference: (f) => [LABELS[f.branch!], f.time],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
