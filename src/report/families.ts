/**
 * What the report knows about a family, from the task registry: names beside ids
 * (`task5 — magnesium check and IV replacement`) and the detector hints each family declares.
 */
import { FAMILIES, isFamilyId } from '../tasks/registry.js';
import type { DetectorHints } from '../tasks/types.js';

/** The registry's short name of a family (`magnesium check and IV replacement`), undefined for an unknown family. */
export function familyName(id: string): string | undefined {
  return isFamilyId(id) ? FAMILIES[id].name : undefined;
}

/** `task5 — magnesium check and IV replacement`; the bare id for a family the registry does not know. */
export function familyLabel(id: string): string {
  const name = familyName(id);
  return name ? `${id} — ${name}` : id;
}

/** The detector hints a family declares (`TaskFamily.detector`), undefined for a family the registry does not know. */
export function familyDetector(id: string): DetectorHints | undefined {
  return isFamilyId(id) ? FAMILIES[id].detector : undefined;
}
