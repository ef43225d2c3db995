/**
 * The search parameters this server supports, per resource type, and how each maps onto the store's index keys
 * (IndexKeys). Anything not listed here is answered with HTTP 400 naming the supported parameters, as HAPI does.
 */

export type KeyField = 'patient' | 'code' | 'category' | 'status' | 'date' | 'date2' | 'lastUpdated';

export type ParamDef =
  | { kind: 'id' }
  | { kind: 'reference'; key: 'patient' }
  | { kind: 'token'; key: 'code' | 'category' | 'status' }
  | { kind: 'token'; strings: string }
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
};
