/** SVG charts rendered with vega-lite → vega in Node (no browser, no network). */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { BEHAVIOURS } from './behaviours.js';
import { familyLabel } from './families.js';
import { comparable } from './leaderboard.js';
import type { Leaderboard, RunAnalysis } from './types.js';

export const PALETTE = ['#4C78A8', '#F58518', '#54A24B', '#B279A2', '#E45756', '#72B7B2', '#EECA3B', '#9D755D'];
const FONT = 'Helvetica, Arial, sans-serif';

const baseConfig = {
  font: FONT,
  background: 'white',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelColor: '#333', titleColor: '#333', gridColor: '#e6e6e6', domainColor: '#888' },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'top', labelLimit: 260 },
  title: { fontSize: 14, anchor: 'start', color: '#222' },
};

/** Render a vega-lite spec to an SVG string (deterministic for the same spec); null stays null (nothing to plot). */
export async function renderSvg(spec: Record<string, unknown> | null): Promise<string | null> {
  if (spec === null) return null;
  const compiled = vl.compile({ ...spec, config: { ...baseConfig, ...((spec.config as object) ?? {}) } } as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const runColors = (runs: RunAnalysis[]) => ({ domain: runs.map((r) => r.label), range: runs.map((_, i) => PALETTE[i % PALETTE.length]!) });

/**
 * Per-family success rate, one bar per run in each family group, with the 95% Wilson interval as an error bar.
 * Families are rows labelled `task5 — magnesium check and IV replacement`. Null when there is no family to plot.
 */
export function familyChartSpec(runs: RunAnalysis[]): Record<string, unknown> | null {
  const values = runs.flatMap((r) =>
    r.scores.perFamily.map((f) => ({
      run: r.label,
      family: familyLabel(f.family),
      sr: f.sr,
      low: f.ci95.low,
      high: f.ci95.high,
      label: `${f.correct}/${f.total}`,
      ci: `${(f.ci95.low * 100).toFixed(1)}–${(f.ci95.high * 100).toFixed(1)}%`,
    })),
  );
  if (values.length === 0) return null;
  const families = (runs[0]?.scores.perFamily ?? []).map((f) => familyLabel(f.family));
  const y = { field: 'family', type: 'nominal', sort: families, title: null, axis: { labelLimit: 420 } };
  const yOffset = { field: 'run', type: 'nominal', sort: runs.map((r) => r.label) };
  return {
    title: 'Success rate per task family (error bars: 95% Wilson interval)',
    width: 420,
    height: { step: Math.max(12, 8 * runs.length) },
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          y,
          yOffset,
          x: { field: 'sr', type: 'quantitative', title: 'success rate', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
          color: { field: 'run', type: 'nominal', title: 'run', scale: runColors(runs) },
          tooltip: [{ field: 'run' }, { field: 'family' }, { field: 'label', title: 'correct' }, { field: 'ci', title: '95% CI' }],
        },
      },
      {
        mark: { type: 'rule', color: '#333', strokeWidth: 1.2 },
        encoding: { y, yOffset, x: { field: 'low', type: 'quantitative' }, x2: { field: 'high' } },
      },
    ],
  };
}

/** Published overall success rates (300-task tables) with the runs added, sorted descending; null without a 300-task table. */
export function leaderboardChartSpec(runs: RunAnalysis[], board: Leaderboard): Record<string, unknown> | null {
  if (!board.tables.some((t) => t.tasks === 300)) return null;
  const values: { name: string; sr: number; kind: string }[] = [];
  for (const t of board.tables) {
    if (t.tasks !== 300) continue;
    for (const r of t.rows) {
      const kind = t.id.startsWith('third-party') ? 'third-party run' : r.confirmed ? 'published' : 'published (unconfirmed)';
      values.push({ name: t.id.startsWith('third-party') ? r.model : `${r.model}${r.size && r.size !== 'N/A' ? ` (${r.size})` : ''}`, sr: r.overall, kind });
    }
  }
  for (const r of runs) {
    const same = board.tables.some((t) => comparable(r, t) && t.tasks === 300);
    values.push({ name: `▶ ${r.label} (${r.scores.total} tasks)`, sr: r.scores.successRate, kind: same ? 'this report' : 'this report (other task set)' });
  }
  values.sort((a, b) => b.sr - a.sr || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    title: 'Overall success rate beside published MedAgentBench results (300-task tables)',
    width: 440,
    height: { step: 17 },
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'name', type: 'nominal', sort: values.map((v) => v.name), title: null, axis: { labelLimit: 480 } },
          x: { field: 'sr', type: 'quantitative', title: 'success rate', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
          color: {
            field: 'kind',
            type: 'nominal',
            title: null,
            scale: {
              domain: ['this report', 'this report (other task set)', 'published', 'published (unconfirmed)', 'third-party run'],
              range: ['#E45756', '#F2A7A6', '#4C78A8', '#A9C4E0', '#BAB0AC'],
            },
          },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 3, fontSize: 10, color: '#333' },
        encoding: {
          y: { field: 'name', type: 'nominal', sort: values.map((v) => v.name) },
          x: { field: 'sr', type: 'quantitative' },
          text: { field: 'sr', type: 'quantitative', format: '.1%' },
        },
      },
    ],
  };
}

/** Number of tasks showing each behaviour, one bar per run; null when no run shows any behaviour. */
export function behaviourChartSpec(runs: RunAnalysis[]): Record<string, unknown> | null {
  if (!runs.some((r) => r.behaviours.some((b) => b.tasks > 0))) return null;
  const titles = BEHAVIOURS.map((b) => b.title);
  const values = runs.flatMap((r) =>
    r.behaviours.map((b) => ({ run: r.label, behaviour: BEHAVIOURS.find((x) => x.id === b.behaviour)!.title, tasks: b.tasks })),
  );
  return {
    title: 'Behaviours (tasks showing each)',
    width: 420,
    height: { step: 11 },
    data: { values },
    mark: { type: 'bar' },
    encoding: {
      y: { field: 'behaviour', type: 'nominal', sort: titles, title: null, axis: { labelLimit: 320 } },
      yOffset: { field: 'run', type: 'nominal', sort: runs.map((r) => r.label) },
      x: { field: 'tasks', type: 'quantitative', title: 'tasks', axis: { tickMinStep: 1, format: 'd' } },
      color: { field: 'run', type: 'nominal', title: 'run', scale: runColors(runs) },
    },
  };
}
