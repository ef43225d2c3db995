/**
 * Reports over run folders: `buildReport` computes everything (scores, leaderboard, behaviours, comparisons),
 * `writeReport` writes report.md, report.html and report.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeRun, compareRuns } from './analyze.js';
import { behaviourChartSpec, familyChartSpec, leaderboardChartSpec, renderSvg } from './charts.js';
import { renderHtml } from './html.js';
import { loadLeaderboard } from './leaderboard.js';
import { assertSameTasks, loadRuns } from './load.js';
import { renderMarkdown } from './markdown.js';
import type { LoadedRun, ReportData } from './types.js';

export { analyzeRun, compareRuns, scoreRun, firstDivergence } from './analyze.js';
export { BEHAVIOURS, BEHAVIOUR_IDS, DETECTORS, detectAll } from './behaviours.js';
export { loadRun, loadRuns, loadRunsByTrial, assertSameTasks, RunFolderError } from './load.js';
export { loadLeaderboard, LEADERBOARD_PATH } from './leaderboard.js';
export { wilson, mcnemarExact, binomialTwoSidedHalf } from './stats.js';
export { createViewerApp, startViewer } from './viewer.js';
export type * from './types.js';

export interface BuildOptions {
  /** Leaderboard file (default: the bundled data/leaderboard/medagentbench.json). */
  leaderboardPath?: string;
  /** Case studies per comparison (default 6). */
  maxCaseStudies?: number;
}

/** Analyse loaded runs; with two or more runs, every later run is compared with the first (same tasks required). */
export function analyze(runs: LoadedRun[], opts: BuildOptions = {}): ReportData {
  if (runs.length > 1) assertSameTasks(runs);
  const analyses = runs.map(analyzeRun);
  const comparisons = runs.slice(1).map((r, i) => compareRuns(runs[0]!, r, analyses[0]!, analyses[i + 1]!, opts.maxCaseStudies ?? 6));
  return { runs: analyses, comparisons, leaderboard: loadLeaderboard(opts.leaderboardPath) };
}

/** Load run folders and analyse them. Throws RunFolderError for a missing, malformed or empty run folder. */
export function buildReport(dirs: string[], opts: BuildOptions = {}): ReportData {
  return analyze(loadRuns(dirs), opts);
}

export interface WrittenReport {
  markdown: string;
  html: string;
  files: { md: string; html: string; json: string };
}

/** The report data as written to report.json (absolute folder paths dropped so output does not depend on cwd). */
export function reportJson(data: ReportData): string {
  const clean = { ...data, runs: data.runs.map(({ dir: _dir, ...r }) => r) };
  return `${JSON.stringify(clean, null, 2)}\n`;
}

export async function renderReport(data: ReportData): Promise<{ markdown: string; html: string }> {
  const [family, leaderboard, behaviours] = await Promise.all([
    renderSvg(familyChartSpec(data.runs)),
    renderSvg(leaderboardChartSpec(data.runs, data.leaderboard)),
    renderSvg(behaviourChartSpec(data.runs)),
  ]);
  return { markdown: renderMarkdown(data), html: renderHtml(data, { family, leaderboard, behaviours }) };
}

/** Write report.md, report.html and report.json into `outDir` (created if needed). */
export async function writeReport(data: ReportData, outDir: string): Promise<WrittenReport> {
  const { markdown, html } = await renderReport(data);
  mkdirSync(outDir, { recursive: true });
  const files = { md: join(outDir, 'report.md'), html: join(outDir, 'report.html'), json: join(outDir, 'report.json') };
  writeFileSync(files.md, markdown);
  writeFileSync(files.html, html);
  writeFileSync(files.json, reportJson(data));
  return { markdown, html, files };
}
