/**
 * Candidate ordering for branch-balanced synthesis on a synthetic world. The world's planted facts say which patients
 * were built for which scenario; the family generator is then asked for a branch over those candidates first, so it
 * does not have to scan the whole cohort. The generator still derives every branch from the world's data, so a wrong
 * hint can only make a branch come up short (its deficit then moves to the family's other branches), never mislabel
 * a row. Worlds without planted facts are scanned patient by patient. What each family knows about planted facts is
 * its `factory` hints (`src/tasks/taskN.ts`).
 */
import { FAMILIES, FAMILY_IDS, isFamilyId } from '../tasks/registry.js';
import type { PlantedFacts } from '../worlds/index.js';

export function branchHints(family: string, facts: readonly PlantedFacts[]): Map<string, string[]> | null {
  if (!isFamilyId(family)) return null;
  const { branchOf } = FAMILIES[family].factory;
  const out = new Map<string, string[]>();
  for (const f of facts) {
    const b = branchOf(f);
    if (b === null) return null;
    (out.get(b) ?? out.set(b, []).get(b)!).push(f.mrn);
  }
  return out;
}

/**
 * Boundary coverage of a row on a synthetic world (for the dataset card): the planted time edge of the lab the family
 * reads (`MG@24h00`, `A1C@365d`, …) and, for the dosing families, the planted value (`MG=1.9`, `K=3.4`).
 */
export function boundaryTags(family: string, f: PlantedFacts): string[] {
  return isFamilyId(family) ? FAMILIES[family].factory.boundaryTags(f) : [];
}

/**
 * The registered families in the order they receive the remainder of `--size / families` (and a short family's
 * deficit): by `factory.remainderRank`, ties in registry order.
 */
export function remainderOrder(): string[] {
  return FAMILY_IDS.map((id, i) => ({ id, i, rank: FAMILIES[id].factory.remainderRank }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map((x) => x.id);
}
