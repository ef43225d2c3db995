/** Small hand-built FHIR stores for the fhir-* tests. */
import { FhirDecimal } from '../src/fhir/decimal.js';
import { FhirStore } from '../src/fhir/store.js';
import type { Resource } from '../src/fhir/types.js';

const LOINC = 'http://loinc.org';
const OBS_CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';

export function patient(id: string, family: string, given: string[], birthDate: string, gender: string, extra: Record<string, unknown> = {}): Resource {
  return {
    resourceType: 'Patient',
    id,
    meta: { versionId: '1', lastUpdated: '2024-12-30T19:05:44.789+00:00' },
    identifier: [
      {
        use: 'usual',
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical Record Number' }] },
        value: id,
      },
    ],
    name: [{ use: 'official', family, given }],
    gender,
    birthDate,
    ...extra,
  };
}

/** A session write: a blood-pressure vital as an agent POSTs it (not in any base world). */
export const bp = (pat: string, value: string) => ({
  resourceType: 'Observation',
  category: [{ coding: [{ system: 'http://hl7.org/fhir/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
  code: { text: 'BP' },
  effectiveDateTime: '2023-11-13T10:15:00+00:00',
  status: 'final',
  valueString: value,
  subject: { reference: `Patient/${pat}` },
});

export function lab(id: string, pat: string, code: string, when: string, value: string, unit: string, lastUpdated = '2024-12-30T20:21:09.273+00:00'): Resource {
  return {
    resourceType: 'Observation',
    id,
    meta: { versionId: '1', lastUpdated },
    status: 'final',
    category: [{ coding: [{ system: OBS_CAT, code: 'laboratory', display: 'Laboratory' }] }],
    code: { coding: [{ system: LOINC, code, display: code }], text: code },
    subject: { reference: `Patient/${pat}` },
    effectiveDateTime: when,
    valueQuantity: { value: new FhirDecimal(value), unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

export interface Fixture {
  store: FhirStore;
  /** How many times a lazy resource was materialised. */
  materialised: () => number;
}

/**
 * 5 patients; Observations 1001–1012 (MG/K/GLU labs out of date order, a dual-coded BP panel, a lazy MG, one
 * without a date); Condition 2001–2002; MedicationRequest 3001–3002; Procedure 4001; ServiceRequest 5001.
 */
export function buildFixture(opts: { freeze?: boolean } = {}): Fixture {
  const s = new FhirStore();
  s.add(
    patient('S1', 'Stafford', ['Peter'], '1932-12-29', 'female', {
      telecom: [{ system: 'phone', value: '271-106-7188', use: 'home' }],
      address: [{ line: ['86480 Case Court Suite 524'], city: 'Lake Jenniferport', state: 'IA', postalCode: '35769' }],
    }),
  );
  const s2 = patient('S2', 'Müller', ['José', 'Maria'], '1969-05-12', 'male');
  s2.identifier[0].system = 'urn:mrn';
  s.add(s2);
  s.add(patient('S3', 'Dunn', ['Debra'], '1969-05-12', 'female'));
  s.add(patient('S4', 'Watkins', ['Lisa'], '1996-10-10', 'female', { address: [{ city: 'Peterborough', state: 'NH', postalCode: '03458' }] }));
  s.add(patient('S5', 'Peterson', ['Alan'], '1950', 'male'));

  s.add(lab('1001', 'S1', 'MG', '2023-11-12T10:00:00+00:00', '1.8', 'mg/dL'));
  s.add(lab('1002', 'S1', 'MG', '2022-01-05T08:30:00+00:00', '2.0', 'mg/dL', '2024-12-30T20:21:08.000+00:00'));
  s.add(lab('1003', 'S1', 'K', '2023-11-13T07:00:00+00:00', '4.0', 'mmol/L'));
  s.add(lab('1004', 'S1', 'MG', '2023-11-13T09:15:00+00:00', '1.6', 'mg/dL', '2024-12-30T20:21:10.000+00:00'));
  s.add(lab('1005', 'S2', 'GLU', '2023-11-13T06:00:00+00:00', '123.0', 'mg/dL'));
  s.add({
    resourceType: 'Observation',
    id: '1006',
    status: 'final',
    category: [{ coding: [{ system: OBS_CAT, code: 'vital-signs', display: 'Vital Signs' }] }],
    code: {
      coding: [
        { system: LOINC, code: '85354-9', display: 'Blood pressure panel' },
        { system: 'urn:local', code: 'BP' },
      ],
      text: 'BP',
    },
    subject: { reference: 'Patient/S1' },
    effectivePeriod: { start: '2023-11-10T08:00:00+00:00', end: '2023-11-10T08:05:00+00:00' },
  });
  s.add(lab('1007', 'S3', 'MG', '2023-11-13T05:00:00-05:00', '2.1', 'mg/dL'));
  s.add({
    resourceType: 'Observation',
    id: '1008',
    status: 'preliminary',
    code: { coding: [{ system: LOINC, code: 'MG' }] },
    subject: { reference: 'Patient/S1' },
  });
  let count = 0;
  const lazy = lab('1009', 'S1', 'MG', '2021-06-01T12:00:00+00:00', '2.2', 'mg/dL');
  s.addLazy(
    'Observation',
    '1009',
    {
      patient: 'S1',
      code: [`${LOINC}|MG`],
      category: [`${OBS_CAT}|laboratory`],
      status: ['|final'],
      date: [Date.parse('2021-06-01T12:00:00Z'), Date.parse('2021-06-01T12:00:01Z')],
      lastUpdated: Date.parse('2024-12-30T20:21:09.273Z'),
    },
    () => {
      count++;
      return lazy;
    },
  );
  s.add({
    resourceType: 'Condition',
    id: '2001',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
    code: {
      coding: [
        { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'E11.9' },
        { system: 'http://snomed.info/sct', code: '44054006' },
      ],
    },
    subject: { reference: 'Patient/S1' },
    onsetDateTime: '2016-05-10T00:00:00+00:00',
  });
  s.add({
    resourceType: 'Condition',
    id: '2002',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' }] }],
    code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C64.2' }] },
    subject: { reference: 'Patient/S2' },
  });
  s.add({
    resourceType: 'MedicationRequest',
    id: '3001',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: '0338-1715-40' }], text: 'magnesium sulfate IV' },
    subject: { reference: 'Patient/S1' },
    authoredOn: '2023-11-13T10:15:00+00:00',
    dosageInstruction: [{ timing: { event: ['2023-11-14T08:00:00+00:00'] } }],
  });
  s.add({
    resourceType: 'MedicationRequest',
    id: '3002',
    status: 'completed',
    intent: 'order',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community' }] }],
    medicationCodeableConcept: { text: 'lisinopril' },
    subject: { reference: 'Patient/S1' },
    authoredOn: '2021-03-02T09:30:00+00:00',
  });
  s.add({
    resourceType: 'Procedure',
    id: '4001',
    status: 'completed',
    code: {
      coding: [
        { system: 'http://www.ama-assn.org/go/cpt', code: '74177' },
        { system: 'urn:local', code: 'IMGCT0491' },
      ],
    },
    subject: { reference: 'Patient/S2' },
    performedDateTime: '2022-09-01T14:20:00+00:00',
  });
  s.add({
    resourceType: 'ServiceRequest',
    id: '5001',
    status: 'active',
    intent: 'order',
    priority: 'stat',
    code: { coding: [{ system: 'http://loinc.org', code: '2823-3' }] },
    subject: { reference: 'Patient/S1' },
    authoredOn: '2023-11-13T10:15:00+00:00',
    occurrenceDateTime: '2023-11-14T08:00:00+00:00',
  });
  if (opts.freeze ?? true) s.freeze();
  return { store: s, materialised: () => count };
}
