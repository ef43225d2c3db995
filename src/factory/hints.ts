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
