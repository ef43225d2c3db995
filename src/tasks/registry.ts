/**
 * The task families by id. A new family is one file plus one line here.
 */
import type { FamilyId, TaskFamily, TaskKind } from './types.js';
import { task1 } from './task1.js';
import { task2 } from './task2.js';
import { task3 } from './task3.js';
import { task4 } from './task4.js';
import { task5 } from './task5.js';
import { task6 } from './task6.js';
import { task7 } from './task7.js';
import { task8 } from './task8.js';
import { task9 } from './task9.js';
import { task10 } from './task10.js';

export const FAMILIES: Readonly<Record<FamilyId, TaskFamily>> = {
  task1,
  task2,
  task3,
  task4,
  task5,
  task6,
  task7,
  task8,
  task9,
  task10,
};

export const FAMILY_IDS = Object.keys(FAMILIES) as FamilyId[];
export const QUERY_FAMILIES = FAMILY_IDS.filter((id) => FAMILIES[id].kind === 'query');
export const ACTION_FAMILIES = FAMILY_IDS.filter((id) => FAMILIES[id].kind === 'action');

/** `query` or `action` for a family id (`task5`), undefined for an id that is not a family. */
export function familyKind(id: string): TaskKind | undefined {
  return isFamilyId(id) ? FAMILIES[id].kind : undefined;
}

export function isFamilyId(id: string): id is FamilyId {
  return Object.hasOwn(FAMILIES, id);
}

/** The family of an id (`task5`) or a task id (`task5_21`). Throws naming the known families. */
export function getFamily(id: string): TaskFamily {
  const fam = id.includes('_') ? id.split('_')[0] : id;
  if (!isFamilyId(fam)) throw new Error(`unknown task family "${fam}" (known: ${FAMILY_IDS.join(', ')})`);
  return FAMILIES[fam];
}
