/**
 * The clinical suite's `hffollowup` family (heart-failure follow-up within 7 days of discharge): generator branch
 * coverage and planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint
 * (break one field of the expert's action → exactly that checkpoint fails), trap readers (first page only, a slot
 * before now or outside the window, the hospitalist's schedule, cancelled appointments counted) failing with class
 * `lookup`, and `FINISH([])` failing every task.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { type ClinicalWorld, openClinicalWorld } from '../src/tasks/suite/splits.js';
import { HF_CHECKPOINTS, type HfBranch, hffollowup, hfScript, NOT_BOOKED_STATUSES, type SlotReader } from '../src/tasks/suite/hffollowup.js';
import { runScript, plain, type ScriptIO } from '../src/tasks/common.js';
import { runEpisode } from '../src/agent/loop.js';
import { runToolsEpisode, directToolEnvironment } from '../src/agent/tools-loop.js';
import { PolicyAgent, finishEmptyAgent } from '../src/agent/backends/scripted.js';
import { expertPolicy } from '../src/agent/create.js';
import { taskDialect } from '../src/protocol/dialect.js';
import { formatAction, parseAction, POST_ACCEPTED, PUT_ACCEPTED } from '../src/protocol/text.js';
import { rngFor } from '../src/worlds/prng.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, GradeResult, HistoryItem, TaskCase, TaskOutput } from '../src/tasks/types.js';

let cw: ClinicalWorld;
let tasks: GeneratedTask[];
const API = 'http://localhost:8080/fhir/';
const NOW = Date.parse('2023-11-13T10:15:00+00:00');
const WEEK = 7 * 24 * 3600_000;

before(async () => {
  cw = await openClinicalWorld({ seed: 3, patients: 40 });
  tasks = await hffollowup.generate(cw.access, { rng: rngFor('suite-hffollowup-test', 1), patients: cw.world.patientIds });
});

async function play(agent: Agent, t: GeneratedTask, protocol: 'text' | 'tools' = 'text'): Promise<TaskOutput> {
  const s = await cw.access.openSession!(`ep-${t.task.id}`);
  try {
    if (protocol === 'text')
      return (await runEpisode({ index: 0, task: t.task, agent, fhir: s.transport, apiBase: API, postMode: 'live', maxRounds: 10 })).output;
    const env = directToolEnvironment({ fhir: s.transport, dialect: taskDialect(t.task) });
    return (await runToolsEpisode({ index: 0, task: t.task, agent, env, apiBase: API, maxRounds: 10 })).output;
  } finally {
    await s.close();
  }
}

const grade = (t: GeneratedTask, o: TaskOutput): Promise<GradeResult> => hffollowup.grade(t.task, o, cw.access);
const failed = (g: GradeResult) => g.checks.filter((c) => !c.pass).map((c) => c.name);
const expert = new PolicyAgent('expert', expertPolicy);
const getJson = async (path: string) => plain(JSON.parse((await cw.access.fhir({ method: 'GET', url: `${API}${path}` })).body)) as Record<string, unknown>;
const resources = (b: Record<string, unknown>) => ((b.entry as Array<{ resource: Record<string, unknown> }> | undefined) ?? []).map((e) => e.resource);

test('generator: every branch, facts from the record, the decisive slot past the first page, traps in the record', async () => {
  const byBranch = new Map<string, GeneratedTask[]>();
  for (const t of tasks) byBranch.set(t.branch, [...(byBranch.get(t.branch) ?? []), t]);
  assert.deepEqual([...byBranch.keys()].sort(), [...hffollowup.branches].sort());
  for (const b of hffollowup.branches) assert.ok(byBranch.get(b)!.length >= 3, `${b}: ${byBranch.get(b)!.length}`);
  const only = await hffollowup.generate(cw.access, { rng: rngFor('x', 2), patients: cw.world.patientIds, branch: 'no_slot', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'no_slot'));
  let pastFree = 0;
  let outsideFree = 0;
  let decoyEarlier = 0;
  let cancelled = 0;
  for (const t of tasks) {
    const f = t.facts as { schedule: string; discharge: string; cardiologist: string; hospitalist: string; time: string; slot: { id: string } | null };
    const all = resources(await getJson(`Slot?schedule=Schedule/${f.schedule}&_count=5000`));
    assert.ok(all.length > 20, 'more slots than one page');
    const page1 = resources(await getJson(`Slot?schedule=Schedule/${f.schedule}`));
    assert.equal(page1.length, 20);
    // the decisive slot (the one booked, or whose start is the answer) is never on the first page
    assert.ok(!page1.some((s) => Date.parse(String(s.start)) === Date.parse(f.time)), `${t.task.id}: the decisive slot is on the first page`);
    const starts = all.map((s) => String(s.start));
    assert.notDeepEqual(starts, [...starts].sort(), 'unsorted');
    const discharge = Date.parse(f.discharge);
    assert.ok(discharge <= NOW && discharge >= NOW - 3 * 24 * 3600_000 - 3600_000, `${t.task.id}: discharge ${f.discharge}`);
    if (all.some((s) => s.status === 'free' && Date.parse(String(s.start)) < NOW && Date.parse(String(s.start)) > discharge)) pastFree++;
    if (all.some((s) => s.status === 'free' && Date.parse(String(s.start)) === discharge + WEEK + 20 * 60_000)) outsideFree++;
    const hospSchedule = resources(await getJson(`Schedule?actor=Practitioner/${f.hospitalist}`))[0]!;
    const hospFree = resources(await getJson(`Slot?schedule=Schedule/${hospSchedule.id}&status=free&_count=5000`));
    if (hospFree.some((s) => Date.parse(String(s.start)) <= Date.parse(f.time) && Date.parse(String(s.start)) > NOW)) decoyEarlier++;
    const appts = resources(await getJson(`Appointment?patient=${t.patient}&_count=5000`));
    if (appts.some((a) => NOT_BOOKED_STATUSES.includes(String(a.status)))) cancelled++;
  }
  assert.ok(pastFree >= 3, `free slots before now: ${pastFree}`);
  assert.ok(outsideFree >= 3, `free slots 20 minutes after the window: ${outsideFree}`);
  assert.ok(decoyEarlier >= tasks.length - 2, `hospitalist free slots no later than the answer: ${decoyEarlier}`);
  assert.ok(cancelled >= 3, `cancelled or entered-in-error appointments: ${cancelled}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  for (const t of tasks) {
    for (const variant of hffollowup.variants) {
      const agent = new PolicyAgent(variant, (task, history) => hffollowup.solve(task, history, { apiBase: API, variant }));
      const out = await play(agent, t);
      const g = await grade(t, out);
      assert.ok(g.correct, `${t.task.id} ${variant}: ${failed(g)} ${g.exception ?? ''}`);
      assert.equal(g.score, 1);
      assert.equal(g.branch, t.branch);
      assert.deepEqual(
        g.checks.map((c) => c.name),
        HF_CHECKPOINTS[t.branch as HfBranch],
      );
      if (t.branch === 'book') assert.ok(out.history!.filter((h) => h.role === 'agent').length >= 6, 'at least six actions on the booking branch');
    }
    const g = await grade(t, await play(expert, t, 'tools'));
    assert.ok(g.correct, `${t.task.id} tools: ${failed(g)}`);
  }
});

/** The expert's history with one agent message's JSON body changed (its reply kept: the write was accepted). */
function editWrite(h: HistoryItem[], match: (a: { kind: string; url: string }) => boolean, edit: (body: Record<string, unknown>) => void): HistoryItem[] {
  let hit = 0;
  const out = h.map((item) => {
    if (item.role !== 'agent') return item;
    const a = parseAction(item.content, { put: true });
    if ((a.kind !== 'post' && a.kind !== 'put') || !match(a)) return item;
    hit++;
    const body = JSON.parse(a.body) as Record<string, unknown>;
    edit(body);
    return { role: 'agent' as const, content: formatAction({ kind: a.kind, url: a.url, body: JSON.stringify(body) }) };
  });
  assert.equal(hit, 1, 'the mutation hits one write');
  return out;
}

/** The expert's history with one accepted write inserted before FINISH. */
function addWrite(h: HistoryItem[], kind: 'post' | 'put', url: string, body: unknown): HistoryItem[] {
  const out = h.slice(0, -1);
  out.push(
    { role: 'agent', content: formatAction({ kind, url, body: JSON.stringify(body) }) },
    { role: 'user', content: kind === 'put' ? PUT_ACCEPTED : POST_ACCEPTED },
  );
  out.push(h[h.length - 1]!);
  return out;
}

/** The expert's history without its writes (their replies too). */
const dropWrites = (h: HistoryItem[], match: (a: { kind: string; url: string }) => boolean): HistoryItem[] =>
  h.filter((item, i) => {
    const own = item.role === 'agent' ? item : h[i - 1];
    if (own?.role !== 'agent') return true;
    const a = parseAction(own.content, { put: true });
    return !((a.kind === 'post' || a.kind === 'put') && match(a));
  });

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const apptPost = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('Appointment');
  const slotPut = (a: { kind: string }) => a.kind === 'put';
  for (const branch of hffollowup.branches as readonly HfBranch[]) {
    const t = tasks.find((x) => x.branch === branch)!;
    const f = t.facts as { hospitalist: string; cardiologist: string; schedule: string; time: string; slot: { id: string; start: string; end: string } | null };
    const out = await play(expert, t);
    const h = out.history!;
    const answer = JSON.parse(String(out.result)) as [string, string];
    const later = new Date(Date.parse(answer[1]) + 20 * 60_000).toISOString().replace('.000Z', '+00:00');
    const anyFree = resources(await getJson(`Slot?schedule=Schedule/${f.schedule}&status=free&_count=5000`)).find((s) => s.id !== f.slot?.id)!;
    const booking = {
      resourceType: 'Appointment',
      status: 'booked',
      slot: [{ reference: `Slot/${anyFree.id}` }],
      start: anyFree.start,
      end: anyFree.end,
      participant: [
        { actor: { reference: `Patient/${t.patient}` }, status: 'accepted' },
        { actor: { reference: `Practitioner/${f.cardiologist}` }, status: 'accepted' },
      ],
    };
    const mutations: Record<string, () => TaskOutput> = {
      answer: () => ({ ...out, result: JSON.stringify([answer[0], later]) }),
      appointment_practitioner: () => ({
        ...out,
        history: editWrite(h, apptPost, (b) => {
          (b.participant as Array<{ actor: { reference: string } }>)[1]!.actor.reference = `Practitioner/${f.hospitalist}`;
        }),
      }),
      appointment_slot: () => ({ ...out, history: editWrite(h, apptPost, (b) => (b.slot = [{ reference: `Slot/${anyFree.id}` }])) }),
      appointment_payload: () => ({ ...out, history: editWrite(h, apptPost, (b) => (b.status = 'proposed')) }),
      slot_busy: () => ({ ...out, history: editWrite(h, slotPut, (b) => (b.status = 'busy-tentative')) }),
      no_other_writes: () => ({
        ...out,
        history: addWrite(h, 'post', `${API}ServiceRequest`, {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { text: 'Cardiology follow-up' },
          subject: { reference: `Patient/${t.patient}` },
        }),
      }),
      no_booking: () => ({ ...out, history: addWrite(h, 'post', `${API}Appointment`, booking) }),
    };
    for (const name of HF_CHECKPOINTS[branch]) {
      if (name === 'finished') {
        const g = await grade(t, { ...out, status: 'task limit reached', result: null, history: h.slice(0, -1) });
        assert.deepEqual(failed(g), ['finished', 'answer'], branch);
        assert.equal(g.failureClass, 'budget');
        continue;
      }
      if (name === 'appointment_booked') {
        // no Appointment at all: what it would have carried fails with it; the slot is still marked busy
        const g = await grade(t, { ...out, history: dropWrites(h, apptPost) });
        assert.deepEqual(failed(g), ['appointment_booked', 'appointment_practitioner', 'appointment_slot', 'appointment_payload'], branch);
        assert.equal(g.failureClass, 'decision');
        assert.equal(g.score, 1 / 7);
        continue;
      }
      const mutate = mutations[name];
      assert.ok(mutate, `no mutation for ${name}`);
      const g = await grade(t, mutate());
      assert.deepEqual(failed(g), [name], `${branch}: mutating ${name}`);
      const names = HF_CHECKPOINTS[branch];
      assert.equal(g.score, (names.indexOf(name) - 1) / (names.length - 1), `${branch}: score after mutating ${name}`);
      assert.equal(g.failureClass, g.checks.find((c) => c.name === name)!.class);
      assert.equal(g.correct, false);
    }
  }
});

/** A trap policy: the expert's script with another slot reader, or on a changed view of the record. */
function trapAgent(name: string, script: (io: ScriptIO, task: TaskCase) => void): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], script));
}

/** A reader's view of the slots: the expert decides on what it returns. */
const viewSlots =
  (edit: (slots: Array<Record<string, unknown>>) => Array<Record<string, unknown>>, first = false): SlotReader =>
  (io, schedule) =>
    edit(resources(plain(io.get(`${io.apiBase}Slot?schedule=Schedule/${schedule}${first ? '' : '&_count=5000'}`)) as Record<string, unknown>));

test('traps: first page only, ignoring now, a window rounded to days, non-free slots, the hospitalist, cancelled appointments → lookup', async () => {
  const DAY = 24 * 3600_000;
  const readers: Array<[string, (io: ScriptIO, task: TaskCase) => void, number]> = [
    // reads the default first page of the unsorted slots only
    ['first-page', hfScript({ slots: viewSlots((s) => s, true) }), 6],
    // ignores now: a free slot after the discharge but before now counts
    ['ignores-now', hfScript({ rule: { now: 0 } }), 4],
    // rounds the window to whole days: a slot 20 minutes after the window counts
    ['window-in-days', hfScript({ rule: { windowMs: 8 * DAY - 1 } }), 4],
    // takes busy-tentative, busy-unavailable and entered-in-error slots for free ones
    ['any-status', hfScript({ slots: viewSlots((s) => s.map((x) => (x.status === 'busy' ? x : { ...x, status: 'free' }))) }), 4],
    // books with the discharging hospitalist (the referral's requester), whose free slots come earlier
    ['hospitalist', hfScript({ practitioner: 'requester' }), 10],
    // counts cancelled and entered-in-error appointments as booked
    ['any-appointment', hfScript({ rule: { notBooked: [] } }), 3],
  ];
  for (const [name, script, least] of readers) {
    let caught = 0;
    for (const t of tasks) {
      const out = await play(trapAgent(name, script), t);
      const g = await grade(t, out);
      if (g.correct) continue;
      caught++;
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  for (const t of tasks) {
    const g = await grade(t, await play(finishEmptyAgent(), t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.failureClass, 'lookup');
    assert.equal(g.score, 0, `${t.task.id}: partial credit for doing nothing`);
  }
});
