/** Human-readable summaries for the CLI. */
import type { RunSummary } from './types.js';

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function formatSummary(s: RunSummary & { agentFailures?: number }, dir?: string): string {
  const lines: string[] = [];
  lines.push(`${s.manifest.agent.name} on ${s.manifest.taskSet.name}: ${s.correct}/${s.total} = ${pct(s.successRate)} (query ${pct(s.querySR)}, action ${pct(s.actionSR)})`);
  lines.push(
    'per family: ' +
      Object.entries(s.perFamily)
        .map(([f, v]) => `${f} ${v.correct}/${v.total}`)
        .join(', '),
  );
  lines.push('statuses: ' + Object.entries(s.statusCounts).map(([k, v]) => `${k} ${v}`).join(', '));
  lines.push(`tokens: prompt ${s.tokens.prompt}, completion ${s.tokens.completion}; wall ${(s.wallMs / 1000).toFixed(1)} s; post mode ${s.manifest.postMode}`);
  if (dir) lines.push(`run folder: ${dir}`);
  return lines.join('\n') + '\n';
}
