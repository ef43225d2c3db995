/**
 * Search parameters of the resource types the clinical task families read and write beyond MedAgentBench's:
 * AllergyIntolerance, Immunization, Practitioner, Schedule, Slot and Appointment, on base records and on records
 * created in a session, through the FHIR handler (what agents reach).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FhirStore } from '../src/fhir/store.js';
import { createFhirHandler, capabilityStatement } from '../src/fhir/server.js';
import { handlerTransport } from '../src/fhir/client.js';

const BASE = 'http://localhost:8080/fhir/';
const ALLERGY_CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
const ALLERGY_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification';

function world(): FhirStore {
  const store = new FhirStore();
  store.add({ resourceType: 'Patient', id: 'S1', name: [{ family: 'Doe', given: ['Ann'] }] });
  store.add({ resourceType: 'Patient', id: 'S2', name: [{ family: 'Roe', given: ['Rob'] }] });
  store.add({
    resourceType: 'Practitioner',
    id: 'PR1',
    name: [{ family: 'Osler', given: ['William'] }],
    identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }],
  });
  store.add({
    resourceType: 'Schedule',
    id: 'SC1',
    active: true,
    actor: [{ reference: 'Practitioner/PR1' }],
    planningHorizon: { start: '2023-11-13', end: '2023-12-13' },
  });
  const days = ['2023-11-14', '2023-11-15', '2023-11-16'];
  days.forEach((d, i) =>
    store.add({
      resourceType: 'Slot',
      id: `SL${i}`,
      schedule: { reference: 'Schedule/SC1' },
      status: i === 0 ? 'busy' : 'free',
      start: `${d}T09:00:00+00:00`,
      end: `${d}T09:30:00+00:00`,
    }),
  );
  const allergy = (id: string, patient: string, clinical: string, verification: string, criticality: string, category: string) =>
    store.add({
      resourceType: 'AllergyIntolerance',
      id,
      patient: { reference: `Patient/${patient}` },
      clinicalStatus: { coding: [{ system: ALLERGY_CLINICAL, code: clinical }] },
      verificationStatus: { coding: [{ system: ALLERGY_VERIFICATION, code: verification }] },
      category: [category],
      criticality,
      code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '7980', display: 'penicillin G' }] },
      recordedDate: '2020-01-01',
    });
  allergy('A1', 'S1', 'active', 'confirmed', 'high', 'medication');
  allergy('A2', 'S1', 'active', 'entered-in-error', 'low', 'medication');
  allergy('A3', 'S2', 'inactive', 'refuted', 'low', 'food');
  store.add({
    resourceType: 'Immunization',
    id: 'I1',
    status: 'completed',
    patient: { reference: 'Patient/S1' },
    vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '141' }] },
    occurrenceDateTime: '2022-10-01',
  });
  store.add({
    resourceType: 'Immunization',
    id: 'I2',
    status: 'entered-in-error',
    patient: { reference: 'Patient/S1' },
    vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '141' }] },
    occurrenceDateTime: '2023-10-01',
  });
  return store.freeze();
}

const store = world();
const fhir = handlerTransport(createFhirHandler(store), { session: 'params' });

async function ids(query: string): Promise<string[]> {
  const r = await fhir({ method: 'GET', url: BASE + query });
  assert.equal(r.status, 200, `${query}: ${r.body}`);
  return ((JSON.parse(r.body) as { entry?: Array<{ resource: { id: string } }> }).entry ?? []).map((e) => e.resource.id);
}

test('AllergyIntolerance: patient, clinical-status, verification-status (and :not), criticality, category, code, date', async () => {
  assert.deepEqual(await ids('AllergyIntolerance?patient=S1'), ['A1', 'A2']);
  assert.deepEqual(await ids('AllergyIntolerance?patient=S1&verification-status:not=entered-in-error'), ['A1']);
  assert.deepEqual(await ids(`AllergyIntolerance?verification-status=${ALLERGY_VERIFICATION}|refuted`), ['A3']);
  assert.deepEqual(await ids('AllergyIntolerance?clinical-status=active&criticality=high'), ['A1']);
  assert.deepEqual(await ids('AllergyIntolerance?category=food'), ['A3']);
  assert.deepEqual(await ids('AllergyIntolerance?code=7980&date=lt2021'), ['A1', 'A2', 'A3']);
  assert.deepEqual(await ids('AllergyIntolerance?date=ge2021'), []);
});

test('Immunization: patient, vaccine-code, status, date', async () => {
  assert.deepEqual(await ids('Immunization?patient=S1&vaccine-code=http://hl7.org/fhir/sid/cvx|141'), ['I1', 'I2']);
  assert.deepEqual(await ids('Immunization?patient=S1&status=completed&date=ge2022-08-01'), ['I1']);
  assert.deepEqual(await ids('Immunization?patient=S1&date=ge2023-08-01'), ['I2']);
});

test('Practitioner, Schedule and Slot: names, actor, schedule (as written or by id), status, start, _sort', async () => {
  assert.deepEqual(await ids('Practitioner?name=osl'), ['PR1']);
  assert.deepEqual(await ids('Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1234567893'), ['PR1']);
  assert.deepEqual(await ids('Schedule?actor=Practitioner/PR1&active=true'), ['SC1']);
  assert.deepEqual(await ids('Schedule?actor=PR1&date=lt2023-11-20'), ['SC1']);
  assert.deepEqual(await ids('Slot?schedule=Schedule/SC1&status=free'), ['SL1', 'SL2']);
  assert.deepEqual(await ids('Slot?schedule=SC1&start=ge2023-11-15&_sort=-start'), ['SL2', 'SL1']);
  assert.deepEqual(await ids('Slot?schedule=Schedule/OTHER'), []);
});

test('Appointment created in a session is found by patient, actor, practitioner, slot, date and status', async () => {
  const body = {
    resourceType: 'Appointment',
    status: 'booked',
    slot: [{ reference: 'Slot/SL1' }],
    start: '2023-11-15T09:00:00+00:00',
    end: '2023-11-15T09:30:00+00:00',
    participant: [
      { actor: { reference: 'Patient/S1' }, status: 'accepted' },
      { actor: { reference: 'Practitioner/PR1' }, status: 'accepted' },
    ],
  };
  const r = await fhir({ method: 'POST', url: `${BASE}Appointment`, body: JSON.stringify(body), headers: { 'content-type': 'application/fhir+json' } });
  assert.equal(r.status, 201, r.body);
  const [id] = await ids('Appointment?patient=S1');
  assert.ok(id);
  assert.deepEqual(await ids('Appointment?patient=Patient/S1&slot=SL1&practitioner=PR1&date=2023-11-15&status=booked'), [id]);
  assert.deepEqual(await ids('Appointment?actor=Practitioner/PR1'), [id]);
  assert.deepEqual(await ids('Appointment?patient=S2'), []);
  assert.deepEqual(await ids('Appointment?date=2023-11-16'), []);
  // another session does not see it
  const other = handlerTransport(createFhirHandler(store), { session: 'params-other' });
  const o = await other({ method: 'GET', url: `${BASE}Appointment?patient=S1` });
  assert.equal((JSON.parse(o.body) as { total: number }).total, 0);
});

test('the CapabilityStatement lists the new parameters, references typed as references', () => {
  const cs = capabilityStatement(store, false) as { rest: Array<{ resource: Array<{ type: string; searchParam: Array<{ name: string; type: string }> }> }> };
  const params = (type: string) => Object.fromEntries(cs.rest[0]!.resource.find((r) => r.type === type)!.searchParam.map((p) => [p.name, p.type]));
  assert.equal(params('Slot').schedule, 'reference');
  assert.equal(params('Slot').start, 'date');
  assert.equal(params('Appointment').slot, 'reference');
  assert.equal(params('Appointment').patient, 'reference');
  assert.equal(params('AllergyIntolerance')['verification-status'], 'token');
  assert.equal(params('Immunization')['vaccine-code'], 'token');
  assert.equal(params('Practitioner').name, 'string');
});
