/**
 * The search parameters this server supports, per resource type, and how each maps onto the store's index keys
 * (IndexKeys). Anything not listed here is answered with HTTP 400 naming the supported parameters, as HAPI does.
 */

export type KeyField = 'patient' | 'code' | 'category' | 'status' | 'date' | 'date2' | 'lastUpdated';

export type ParamDef =
  | { kind: 'id' }
  | { kind: 'reference'; key: 'patient' }
  | { kind: 'token'; key: 'code' | 'category' | 'status' }
  | { kind: 'token'; strings: string; reference?: true }
  | { kind: 'string'; strings: string }
  | { kind: 'date'; key: 'date' | 'date2' | 'lastUpdated' };

const ID: ParamDef = { kind: 'id' };
const LAST_UPDATED: ParamDef = { kind: 'date', key: 'lastUpdated' };
const PATIENT: ParamDef = { kind: 'reference', key: 'patient' };
const CODE: ParamDef = { kind: 'token', key: 'code' };
const CATEGORY: ParamDef = { kind: 'token', key: 'category' };
const STATUS: ParamDef = { kind: 'token', key: 'status' };
const DATE: ParamDef = { kind: 'date', key: 'date' };
const DATE2: ParamDef = { kind: 'date', key: 'date2' };
const str = (name: string): ParamDef => ({ kind: 'string', strings: name });
const tok = (name: string): ParamDef => ({ kind: 'token', strings: name });
/** A reference to another resource than a Patient, matched as written (`Schedule/7`) or by bare id (`7`). */
const ref = (name: string): ParamDef => ({ kind: 'token', strings: name, reference: true });
const PERSON = {
  identifier: tok('identifier'),
  name: str('name'),
  family: str('family'),
  given: str('given'),
  gender: tok('gender'),
  telecom: tok('telecom'),
};

const COMMON = { _id: ID, _lastUpdated: LAST_UPDATED };
const CLINICAL = { ...COMMON, patient: PATIENT, subject: PATIENT };

/** Parameters by resource type. `date`/`date2` meaning per type is documented in `DATE_FIELDS`. */
export const SEARCH_PARAMS: Record<string, Record<string, ParamDef>> = {
  Patient: {
    ...COMMON,
    identifier: tok('identifier'),
    name: str('name'),
    family: str('family'),
    given: str('given'),
    birthdate: DATE,
    gender: tok('gender'),
    address: str('address'),
    'address-city': str('address-city'),
    'address-postalcode': str('address-postalcode'),
    'address-state': str('address-state'),
    telecom: tok('telecom'),
  },
  Observation: { ...CLINICAL, code: CODE, category: CATEGORY, date: DATE, status: STATUS },
  Condition: { ...CLINICAL, code: CODE, category: CATEGORY, 'onset-date': DATE, 'clinical-status': STATUS },
  MedicationRequest: {
    ...CLINICAL,
    code: CODE,
    category: CATEGORY,
    status: STATUS,
    authoredon: DATE,
    date: DATE2,
    intent: tok('intent'),
  },
  Procedure: { ...CLINICAL, code: CODE, category: CATEGORY, date: DATE, status: STATUS },
  ServiceRequest: {
    ...CLINICAL,
    code: CODE,
    category: CATEGORY,
    status: STATUS,
    authored: DATE,
    occurrence: DATE2,
    intent: tok('intent'),
    priority: tok('priority'),
  },
  AllergyIntolerance: {
    ...COMMON,
    patient: PATIENT,
    code: CODE,
    'clinical-status': STATUS,
    'verification-status': tok('verification-status'),
    criticality: tok('criticality'),
    category: tok('category'),
    date: DATE,
  },
  Immunization: { ...COMMON, patient: PATIENT, 'vaccine-code': CODE, date: DATE, status: STATUS },
  Appointment: { ...COMMON, patient: PATIENT, actor: ref('actor'), practitioner: ref('practitioner'), slot: ref('slot'), date: DATE, status: STATUS },
  Slot: { ...COMMON, schedule: ref('schedule'), start: DATE, status: STATUS },
  Schedule: { ...COMMON, actor: ref('actor'), active: tok('active'), date: DATE },
  Practitioner: { ...COMMON, ...PERSON },
};

/** Parameters of any other resource type (e.g. imported AllergyIntolerance, Encounter). */
export const GENERIC_PARAMS: Record<string, ParamDef> = {
  ...CLINICAL,
  code: CODE,
  category: CATEGORY,
  status: STATUS,
  date: DATE,
};

export function paramsFor(resourceType: string): Record<string, ParamDef> {
  return SEARCH_PARAMS[resourceType] ?? GENERIC_PARAMS;
}

/** Search result control parameters accepted on every search. */
export const CONTROL_PARAMS = ['_count', '_sort', '_format', '_pretty', '_summary', '_total'];

/** Human description of the FHIR elements each index key is extracted from, per type (CapabilityStatement docs). */
export const PARAM_DOCS: Record<string, Record<string, string>> = {
  Patient: {
    identifier: 'Patient.identifier (value with or without system|)',
    name: 'any part of Patient.name (family, given, prefix, suffix, text); starts-with, case and accent insensitive',
    family: 'Patient.name.family',
    given: 'Patient.name.given',
    birthdate: 'Patient.birthDate',
    gender: 'Patient.gender',
    address: 'any part of Patient.address',
    'address-city': 'Patient.address.city',
    'address-postalcode': 'Patient.address.postalCode',
    'address-state': 'Patient.address.state',
    telecom: 'Patient.telecom (system|value)',
  },
  Observation: { date: 'Observation.effective[x]' },
  Condition: { 'onset-date': 'Condition.onset[x]', 'clinical-status': 'Condition.clinicalStatus' },
  MedicationRequest: {
    code: 'MedicationRequest.medicationCodeableConcept',
    authoredon: 'MedicationRequest.authoredOn',
    date: 'MedicationRequest.dosageInstruction.timing.event',
  },
  Procedure: { date: 'Procedure.performed[x]' },
  ServiceRequest: { authored: 'ServiceRequest.authoredOn', occurrence: 'ServiceRequest.occurrence[x]' },
  AllergyIntolerance: {
    'clinical-status': 'AllergyIntolerance.clinicalStatus',
    'verification-status': 'AllergyIntolerance.verificationStatus',
    category: 'AllergyIntolerance.category (food, medication, environment, biologic)',
    date: 'AllergyIntolerance.recordedDate',
  },
  Immunization: { 'vaccine-code': 'Immunization.vaccineCode', date: 'Immunization.occurrence[x]' },
  Appointment: {
    patient: 'Appointment.participant.actor (a Patient)',
    actor: 'Appointment.participant.actor (Type/id or id)',
    practitioner: 'Appointment.participant.actor (a Practitioner)',
    slot: 'Appointment.slot',
    date: 'Appointment.start … end',
  },
  Slot: { schedule: 'Slot.schedule (Schedule/id or id)', start: 'Slot.start … end', status: 'Slot.status (free, busy, …)' },
  Schedule: { actor: 'Schedule.actor (Type/id or id)', active: 'Schedule.active', date: 'Schedule.planningHorizon' },
};
