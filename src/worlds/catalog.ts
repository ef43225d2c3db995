/**
 * Code catalogues for generated clinical history: labs and vitals (local base-name code under http://loinc.org plus
 * the real LOINC), problem-list conditions (ICD-10-CM + SNOMED CT), procedures (CPT) and medications (RxNorm).
 * Codes and their systems are summarised in docs/worlds.md; background values and normal ranges are typical adult
 * values, defined below.
 */

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const ICD10 = 'http://hl7.org/fhir/sid/icd-10-cm';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const CPT = 'http://www.ama-assn.org/go/cpt';
export const UCUM = 'http://unitsofmeasure.org';

/** A measured quantity: its codes, unit and the background distribution its values are drawn from. */
export interface VitalDef {
  /** Local base-name code (MedAgentBench style), also `code.text`. */
  local: string;
  loinc: string;
  loincDisplay: string;
  unit: string;
  /** UCUM code for `valueQuantity.code`. */
  ucum: string;
  /** Values are rounded to this many decimals (printed with at least one, e.g. `97.0`, as the server does). */
  decimals: number;
  /** Background distribution (normal, clipped). */
  mean: number;
  sd: number;
  min: number;
  max: number;
}

export interface LabDef extends VitalDef {
  /** Normal range used for LOW/HIGH interpretation flags. */
  low: number;
  high: number;
  category: 'laboratory' | 'vital-signs';
}

const lab = (
  local: string,
  loinc: string,
  loincDisplay: string,
  unit: string,
  ucum: string,
  decimals: number,
  low: number,
  high: number,
  mean: number,
  sd: number,
  min: number,
  max: number,
): LabDef => ({ local, loinc, loincDisplay, unit, ucum, decimals, low, high, mean, sd, min, max, category: 'laboratory' });

/** Laboratory tests. MG, K, GLU and A1C are the MedAgentBench task codes. */
export const LABS = {
  MG: lab('MG', '19123-9', 'Magnesium [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 1, 1.7, 2.2, 2.05, 0.22, 1.2, 2.9),
  K: lab('K', '2823-3', 'Potassium [Moles/volume] in Serum or Plasma', 'mmol/L', 'mmol/L', 1, 3.5, 5.0, 4.1, 0.38, 2.8, 5.8),
  GLU: lab('GLU', '2345-7', 'Glucose [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 0, 70, 180, 128, 38, 55, 380),
  A1C: lab('A1C', '4548-4', 'Hemoglobin A1c/Hemoglobin.total in Blood', '%', '%', 1, 4.0, 5.6, 6.4, 1.1, 4.6, 11.5),
  NA: lab('NA', '2951-2', 'Sodium [Moles/volume] in Serum or Plasma', 'mmol/L', 'mmol/L', 1, 135, 145, 138.5, 3.2, 124, 152),
  CL: lab('CL', '2075-0', 'Chloride [Moles/volume] in Serum or Plasma', 'mmol/L', 'mmol/L', 1, 98, 107, 102, 3.5, 88, 116),
  CO2: lab('CO2', '2028-9', 'Carbon dioxide, total [Moles/volume] in Serum or Plasma', 'mmol/L', 'mmol/L', 1, 22, 29, 25, 2.8, 15, 34),
  BUN: lab('BUN', '3094-0', 'Urea nitrogen [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 1, 7, 20, 18, 8, 4, 80),
  CR: lab('CR', '2160-0', 'Creatinine [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 2, 0.6, 1.2, 1.05, 0.35, 0.4, 4.5),
  CA: lab('CA', '17861-6', 'Calcium [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 1, 8.5, 10.2, 9.1, 0.5, 7.2, 11.2),
  PHOS: lab('PHOS', '2777-1', 'Phosphate [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 1, 2.5, 4.5, 3.4, 0.6, 1.6, 6.2),
  HGB: lab('HGB', '718-7', 'Hemoglobin [Mass/volume] in Blood', 'g/dL', 'g/dL', 1, 12.0, 17.0, 12.4, 1.8, 6.8, 17.5),
  HCT: lab('HCT', '4544-3', 'Hematocrit [Volume Fraction] of Blood by Automated count', '%', '%', 1, 36, 50, 37.5, 5, 21, 52),
  WBC: lab('WBC', '6690-2', 'Leukocytes [#/volume] in Blood by Automated count', 'K/uL', '10*3/uL', 1, 4.0, 11.0, 8.2, 2.8, 1.5, 24),
  PLT: lab('PLT', '777-3', 'Platelets [#/volume] in Blood by Automated count', 'K/uL', '10*3/uL', 0, 150, 400, 235, 70, 40, 620),
} as const satisfies Record<string, LabDef>;

export type LabCode = keyof typeof LABS;
/** The four codes the MedAgentBench families read. */
export const TASK_LAB_CODES = ['MG', 'K', 'GLU', 'A1C'] as const;
export type TaskLabCode = (typeof TASK_LAB_CODES)[number];

/** Point-of-care capillary glucose uses the same local code GLU with the capillary LOINC. */
export const POC_GLU_LOINC = { code: '41653-7', display: 'Glucose [Mass/volume] in Capillary blood by Glucometer' };

/** Flowsheet vitals: local code under http://loinc.org (as `code.text`) plus LOINC. BP is handled separately. */
export const VITALS: Record<string, VitalDef> = {
  HEARTRATE: { local: 'HEARTRATE', loinc: '8867-4', loincDisplay: 'Heart rate', unit: '/min', ucum: '/min', decimals: 0, mean: 82, sd: 13, min: 45, max: 150 },
  SPO2: {
    local: 'SPO2',
    loinc: '59408-5',
    loincDisplay: 'Oxygen saturation in Arterial blood by Pulse oximetry',
    unit: '%',
    ucum: '%',
    decimals: 0,
    mean: 96,
    sd: 2,
    min: 84,
    max: 100,
  },
  RESP: { local: 'RESP', loinc: '9279-1', loincDisplay: 'Respiratory rate', unit: '/min', ucum: '/min', decimals: 0, mean: 17, sd: 3, min: 10, max: 34 },
  TEMP: { local: 'TEMP', loinc: '8310-5', loincDisplay: 'Body temperature', unit: 'Cel', ucum: 'Cel', decimals: 1, mean: 36.9, sd: 0.4, min: 35.6, max: 39.8 },
  FIO2: { local: 'FIO2', loinc: '3150-0', loincDisplay: 'Inhaled oxygen concentration', unit: '%', ucum: '%', decimals: 0, mean: 28, sd: 8, min: 21, max: 60 },
};
export const BP_LOINC = { code: '85354-9', display: 'Blood pressure panel with all children optional' };
export const BP_SYSTOLIC = { code: '8480-6', display: 'Systolic blood pressure' };
export const BP_DIASTOLIC = { code: '8462-4', display: 'Diastolic blood pressure' };

export interface ConditionDef {
  icd10: string;
  icd10Display: string;
  snomed: string;
  snomedDisplay: string;
  text: string;
  /** Chronic problems stay active; acute ones resolve. */
  chronic: boolean;
  weight: number;
}
const cond = (icd10: string, icd10Display: string, snomed: string, snomedDisplay: string, text: string, chronic: boolean, weight = 1): ConditionDef => ({
  icd10,
  icd10Display,
  snomed,
  snomedDisplay,
  text,
  chronic,
  weight,
});
export const CONDITIONS: ConditionDef[] = [
  cond('E11.9', 'Type 2 diabetes mellitus without complications', '44054006', 'Diabetes mellitus type 2 (disorder)', 'Type 2 diabetes mellitus', true, 3),
  cond('R73.03', 'Prediabetes', '15777000', 'Prediabetes', 'Prediabetes', true, 2),
  cond('I10', 'Essential (primary) hypertension', '59621000', 'Essential hypertension (disorder)', 'Essential hypertension', true, 4),
  cond('E78.5', 'Hyperlipidemia, unspecified', '55822004', 'Hyperlipidemia', 'Hyperlipidemia', true, 3),
  cond('D64.9', 'Anemia, unspecified', '271737000', 'Anemia (disorder)', 'Anemia', true, 2),
  cond(
    'I25.10',
    'Atherosclerotic heart disease of native coronary artery without angina pectoris',
    '414545008',
    'Ischemic heart disease (disorder)',
    'Coronary artery disease',
    true,
    2,
  ),
  cond(
    'N18.30',
    'Chronic kidney disease, stage 3 unspecified',
    '433144002',
    'Chronic kidney disease stage 3 (disorder)',
    'Chronic kidney disease stage 3',
    true,
    2,
  ),
  cond('E66.9', 'Obesity, unspecified', '162864005', 'Body mass index 30+ - obesity (finding)', 'Obesity', true, 2),
  cond('M17.12', 'Unilateral primary osteoarthritis, left knee', '239873007', 'Osteoarthritis of knee', 'Osteoarthritis of knee', true, 1),
  cond('I48.91', 'Unspecified atrial fibrillation', '49436004', 'Atrial fibrillation (disorder)', 'Atrial fibrillation', true, 1.5),
  cond('I50.9', 'Heart failure, unspecified', '84114007', 'Heart failure (disorder)', 'Heart failure', true, 1.5),
  cond('J44.9', 'Chronic obstructive pulmonary disease, unspecified', '13645005', 'Chronic obstructive lung disease (disorder)', 'COPD', true, 1.5),
  cond('E03.9', 'Hypothyroidism, unspecified', '40930008', 'Hypothyroidism (disorder)', 'Hypothyroidism', true, 1),
  cond('F32.9', 'Major depressive disorder, single episode, unspecified', '35489007', 'Depressive disorder (disorder)', 'Depression', true, 1),
  cond('K21.9', 'Gastro-esophageal reflux disease without esophagitis', '235595009', 'Gastroesophageal reflux disease (disorder)', 'GERD', true, 1),
  cond('A41.9', 'Sepsis, unspecified organism', '91302008', 'Sepsis (disorder)', 'Sepsis', false, 1),
  cond('J18.9', 'Pneumonia, unspecified organism', '233604007', 'Pneumonia (disorder)', 'Pneumonia', false, 1.5),
  cond('N17.9', 'Acute kidney failure, unspecified', '14669001', 'Acute renal failure syndrome (disorder)', 'Acute kidney injury', false, 1.5),
  cond(
    'N39.0',
    'Urinary tract infection, site not specified',
    '68566005',
    'Urinary tract infectious disease (disorder)',
    'Urinary tract infection',
    false,
    1.5,
  ),
  cond('E83.42', 'Hypomagnesemia', '190855004', 'Hypomagnesemia (disorder)', 'Hypomagnesemia', false, 0.7),
  cond('E87.6', 'Hypokalemia', '43339004', 'Hypokalemia (disorder)', 'Hypokalemia', false, 0.8),
  cond('E87.1', 'Hypo-osmolality and hyponatremia', '89627008', 'Hyponatremia (disorder)', 'Hyponatremia', false, 1),
  cond('S82.899A', 'Other fracture of unspecified lower leg, initial encounter', '16114001', 'Fracture of ankle', 'Ankle fracture', false, 0.5),
  cond('S93.409A', 'Sprain of unspecified ligament of unspecified ankle, initial encounter', '44465007', 'Sprain of ankle', 'Ankle sprain', false, 0.5),
  cond('R07.9', 'Chest pain, unspecified', '29857009', 'Chest pain (finding)', 'Chest pain', false, 1.5),
  cond('R55', 'Syncope and collapse', '271594007', 'Syncope (disorder)', 'Syncope', false, 0.8),
  cond(
    'K85.90',
    'Acute pancreatitis without necrosis or infection, unspecified',
    '197456007',
    'Acute pancreatitis (disorder)',
    'Acute pancreatitis',
    false,
    0.5,
  ),
  cond('I26.99', 'Other pulmonary embolism without acute cor pulmonale', '59282003', 'Pulmonary embolism (disorder)', 'Pulmonary embolism', false, 0.5),
  cond(
    'C64.2',
    'Malignant neoplasm of left kidney, except renal pelvis',
    '93849006',
    'Primary malignant neoplasm of kidney (disorder)',
    'Malignant neoplasm of left kidney',
    true,
    0.3,
  ),
];

export interface ProcedureDef {
  code: string;
  display: string;
  system: string;
  /** Inpatient-day procedures are drawn daily during stays; visit procedures at outpatient visits. */
  setting: 'inpatient' | 'visit' | 'imaging';
}
const proc = (code: string, display: string, setting: ProcedureDef['setting'], system = CPT): ProcedureDef => ({ code, display, system, setting });
export const PROCEDURES: ProcedureDef[] = [
  proc('36415', 'Collection of venous blood by venipuncture', 'inpatient'),
  proc('82962', 'Glucose, blood by glucose monitoring device', 'inpatient'),
  proc('94760', 'Noninvasive ear or pulse oximetry for oxygen saturation', 'inpatient'),
  proc('96365', 'Intravenous infusion, for therapy, prophylaxis, or diagnosis; initial, up to 1 hour', 'inpatient'),
  proc('96374', 'Therapeutic, prophylactic, or diagnostic injection; intravenous push', 'inpatient'),
  proc('99232', 'Subsequent hospital inpatient care, moderate complexity', 'inpatient'),
  proc('99233', 'Subsequent hospital inpatient care, high complexity', 'inpatient'),
  proc('93005', 'Electrocardiogram, routine ECG with at least 12 leads; tracing only', 'inpatient'),
  proc('97116', 'Therapeutic procedure; gait training', 'inpatient'),
  proc('51702', 'Insertion of temporary indwelling bladder catheter; simple', 'inpatient'),
  proc('99214', 'Office or other outpatient visit, established patient, moderate complexity', 'visit'),
  proc('99213', 'Office or other outpatient visit, established patient, low complexity', 'visit'),
  proc('90686', 'Influenza virus vaccine, quadrivalent, split virus, preservative free, intramuscular', 'visit'),
  proc('91320', 'Severe acute respiratory syndrome coronavirus 2 (SARS-CoV-2) vaccine, intramuscular', 'visit'),
  proc('80048', 'Basic metabolic panel', 'visit'),
  proc('83036', 'Hemoglobin; glycosylated (A1C)', 'visit'),
  proc('71046', 'Radiologic examination, chest; 2 views', 'imaging'),
  proc('74177', 'Computed tomography, abdomen and pelvis; with contrast material(s)', 'imaging'),
  proc('70450', 'Computed tomography, head or brain; without contrast material', 'imaging'),
  proc('93306', 'Echocardiography, transthoracic, complete, with Doppler', 'imaging'),
  proc('76700', 'Ultrasound, abdominal, real time with image documentation; complete', 'imaging'),
  proc('73721', 'Magnetic resonance imaging, any joint of lower extremity; without contrast material', 'imaging'),
];

export interface MedicationDef {
  rxnorm: string;
  display: string;
  route: 'Oral' | 'Intravenous' | 'Subcutaneous' | 'Inhalation';
  frequency: string;
  dose: number;
  doseUnit: string;
  /** Chronic (outpatient) medication versus inpatient order. */
  chronic: boolean;
}
const med = (
  rxnorm: string,
  display: string,
  route: MedicationDef['route'],
  frequency: string,
  dose: number,
  doseUnit: string,
  chronic: boolean,
): MedicationDef => ({ rxnorm, display, route, frequency, dose, doseUnit, chronic });
export const MEDICATIONS: MedicationDef[] = [
  med('314076', 'lisinopril 10 MG Oral Tablet', 'Oral', 'DAILY', 10, 'mg', true),
  med('860975', '24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet', 'Oral', 'DAILY', 500, 'mg', true),
  med(
    '106892',
    'insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension [Humulin 70/30]',
    'Subcutaneous',
    'BID',
    20,
    'Units',
    true,
  ),
  med('310798', 'Hydrochlorothiazide 25 MG Oral Tablet', 'Oral', 'DAILY', 25, 'mg', true),
  med('314231', 'Simvastatin 10 MG Oral Tablet', 'Oral', 'NIGHTLY', 10, 'mg', true),
  med('259255', 'Atorvastatin 80 MG Oral Tablet', 'Oral', 'NIGHTLY', 80, 'mg', true),
  med('309362', 'Clopidogrel 75 MG Oral Tablet', 'Oral', 'DAILY', 75, 'mg', true),
  med('866412', '24 HR metoprolol succinate 100 MG Extended Release Oral Tablet', 'Oral', 'DAILY', 100, 'mg', true),
  med('313782', 'Acetaminophen 325 MG Oral Tablet', 'Oral', 'Q6H PRN', 650, 'mg', false),
  med('312617', 'predniSONE 5 MG Oral Tablet', 'Oral', 'DAILY', 5, 'mg', false),
  med('745679', '200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler', 'Inhalation', 'Q4H PRN', 2, 'puff', true),
  med('1361615', 'heparin sodium, porcine 5000 UNT/ML Injectable Solution', 'Subcutaneous', 'Q8H', 5000, 'Units', false),
  med('1807627', 'sodium chloride 9 MG/ML Injectable Solution', 'Intravenous', 'CONTINUOUS', 75, 'mL/h', false),
  med('1665021', 'ceFTRIAXone 1000 MG Injection', 'Intravenous', 'Q24H', 1000, 'mg', false),
  med('1807518', 'ondansetron 2 MG/ML Injectable Solution', 'Intravenous', 'Q8H PRN', 4, 'mg', false),
  med('198211', 'Simethicone 80 MG Chewable Tablet', 'Oral', 'QID PRN', 80, 'mg', false),
  med('197361', 'Amlodipine 5 MG Oral Tablet', 'Oral', 'DAILY', 5, 'mg', true),
  med('966222', 'Levothyroxine Sodium 0.075 MG Oral Tablet', 'Oral', 'DAILY', 75, 'mcg', true),
  med('310429', 'Furosemide 20 MG Oral Tablet', 'Oral', 'DAILY', 20, 'mg', true),
  med('628958', 'potassium chloride 10 MEQ Extended Release Oral Tablet', 'Oral', 'ONCE', 20, 'mEq', false),
  med('1442040', 'magnesium sulfate 2000 MG in water 50 ML Injection', 'Intravenous', 'ONCE', 2, 'g', false),
  med('1049621', 'oxyCODONE Hydrochloride 5 MG Oral Tablet', 'Oral', 'Q4H PRN', 5, 'mg', false),
  med('855332', 'Warfarin Sodium 5 MG Oral Tablet', 'Oral', 'DAILY', 5, 'mg', true),
  med('1535362', 'pantoprazole 40 MG Delayed Release Oral Tablet', 'Oral', 'DAILY', 40, 'mg', true),
];
export const ROUTE_SNOMED: Record<MedicationDef['route'], { code: string; display: string }> = {
  Oral: { code: '26643006', display: 'Oral route' },
  Intravenous: { code: '47625008', display: 'Intravenous route' },
  Subcutaneous: { code: '34206005', display: 'Subcutaneous route' },
  Inhalation: { code: '447694001', display: 'Respiratory tract route' },
};
