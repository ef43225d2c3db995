/** Human-readable summaries for the CLI. */
import type { RunSummary } from './types.js';
import { familyKind } from '../tasks/registry.js';

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function formatSummary(s: RunSummary & { agentFailures?: number }, dir?: string): string {
  const lines: string[] = [];
  const fams = Object.keys(s.perFamily);
  const hasQuery = fams.some((f) => familyKind(f) === 'query');
  const hasAction = fams.some((f) => familyKind(f) !== 'query');
  const split = [hasQuery ? `query ${pct(s.querySR)}` : '', hasAction ? `action ${pct(s.actionSR)}` : ''].filter(Boolean).join(', ');
  lines.push(`${s.manifest.agent.name} on ${s.manifest.taskSet.name}: ${s.correct}/${s.total} = ${pct(s.successRate)} (${split})`);
  lines.push(
    'per family: ' +
      Object.entries(s.perFamily)
        .map(([f, v]) => `${f} ${v.correct}/${v.total}`)
        .join(', '),
  );
  lines.push(
    'statuses: ' +
      Object.entries(s.statusCounts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
  );
  const t = s.trialStats;
  if (t) {
    const ks = Object.keys(t.passAtK);
    lines.push(
      `trials: ${t.trials} per task over ${t.tasks} tasks; pass@1 ${pct(t.passAtK['1'])} (95% ${pct(t.pass1Interval[0])}–${pct(t.pass1Interval[1])}); ` +
        `pass@k ${ks.map((k) => `k=${k} ${pct(t.passAtK[k])}`).join(', ')}; pass^k ${ks.map((k) => `k=${k} ${pct(t.passHatK[k])}`).join(', ')}; ` +
        `consistent tasks ${pct(t.consistency)}`,
    );
  }
  lines.push(`tokens: prompt ${s.tokens.prompt}, completion ${s.tokens.completion}; wall ${(s.wallMs / 1000).toFixed(1)} s; post mode ${s.manifest.postMode}`);
  if (s.agentFailures) lines.push(`agent failures: ${s.agentFailures} (error.jsonl; rerun with --resume)`);
  if (dir) lines.push(`run folder: ${dir}`);
  return lines.join('\n') + '\n';
}

/** How much of a task set a log covers, as one line: `graded 298 of 300; 2 missing count as failures: task3_4, task9_1`. */
export function formatCoverage(graded: number, total: number, missingIds: readonly string[]): string {
  if (missingIds.length === 0) return `graded ${graded} of ${total}`;
  const shown = missingIds.length <= 20 ? missingIds.join(', ') : `${missingIds.slice(0, 20).join(', ')}, … (${missingIds.length} in all)`;
  return `graded ${graded} of ${total}; ${missingIds.length} missing count as failures: ${shown}`;
}
