/**
 * Candidate ordering for branch-balanced synthesis on a synthetic world. The world's planted facts say which patients
 * were built for which scenario; the family generator is then asked for a branch over those candidates first, so it
 * does not have to scan the whole cohort. The generator still derives every branch from the world's data, so a wrong
 * hint can only make a branch come up short (its deficit then moves to the family's other branches), never mislabel
 * a row. Worlds without planted facts are scanned patient by patient.
 */
import type { PlantedFacts } from '../worlds/index.js';

export function branchHints(family: string, facts: readonly PlantedFacts[]): Map<string, string[]> | null {
  const label = (f: PlantedFacts): string | null => {
    switch (family) {
      case 'task4':
        return f.mg.latest24h ? 'data_present' : 'data_absent';
      case 'task5':
        return f.mg.branch === 'none' || f.mg.branch === 'stale' ? 'data_absent_no_order' : f.mg.branch === 'normal' ? 'high_no_order' : 'low_order_required';
      case 'task6':
        return f.glu.count24h > 0 ? 'data_present' : 'data_absent';
      case 'task7':
        return f.glu.latest ? 'data_present' : 'data_absent';
      case 'task9':
        return f.k.branch === 'none' ? 'data_absent_no_order' : f.k.branch === 'low' ? 'low_order_required' : 'normal_no_order';
      case 'task10':
        return f.a1c.branch === 'none' ? 'data_absent_order_required' : f.a1c.branch === 'stale' ? 'stale_order_required' : 'fresh_report_value';
      default:
        return null;
    }
  };
  const out = new Map<string, string[]>();
  for (const f of facts) {
    const b = label(f);
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
  const out: string[] = [];
  const lab = family === 'task4' || family === 'task5' ? f.mg : family === 'task6' || family === 'task7' ? f.glu : family === 'task10' ? f.a1c : null;
  if (lab && 'edge' in lab && lab.edge) out.push(`${family === 'task10' ? 'A1C' : family === 'task6' || family === 'task7' ? 'GLU' : 'MG'}@${lab.edge}`);
  if (family === 'task5' && f.mg.latest24h) out.push(`MG=${f.mg.latest24h.value}`);
  if (family === 'task9' && f.k.latest) out.push(`K=${f.k.latest.value}`);
  return out;
}
