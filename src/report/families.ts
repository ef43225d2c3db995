/** Family names beside their ids (`task5 — magnesium check and IV replacement`), from the task registry. */
import { FAMILIES, isFamilyId } from '../tasks/registry.js';

/** The registry's short name of a family (`magnesium check and IV replacement`), undefined for an unknown family. */
export function familyName(id: string): string | undefined {
  return isFamilyId(id) ? FAMILIES[id].name : undefined;
}

/** `task5 — magnesium check and IV replacement`; the bare id for a family the registry does not know. */
export function familyLabel(id: string): string {
  const name = familyName(id);
  return name ? `${id} — ${name}` : id;
}
