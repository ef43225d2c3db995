/** The bundled published MedAgentBench results (data/leaderboard/medagentbench.json). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Leaderboard, LeaderboardTable, RunAnalysis } from './types.js';

/** Path of the bundled leaderboard file (works from src/ under tsx and from dist/). */
export const LEADERBOARD_PATH = fileURLToPath(new URL('../../data/leaderboard/medagentbench.json', import.meta.url));

export function loadLeaderboard(path: string = LEADERBOARD_PATH): Leaderboard {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Leaderboard;
  if (!raw || !Array.isArray(raw.tables)) throw new Error(`${path}: no "tables"`);
  for (const t of raw.tables) {
    if (typeof t.source !== 'string' || !t.source) throw new Error(`${path}: table ${t.id} has no source`);
    for (const r of t.rows) {
      if (typeof r.overall !== 'number' || r.overall < 0 || r.overall > 1) throw new Error(`${path}: ${t.id}/${r.model}: overall must be a fraction`);
      if (typeof r.confirmed !== 'boolean') throw new Error(`${path}: ${t.id}/${r.model}: "confirmed" missing`);
      if (r.source !== undefined && (typeof r.source !== 'string' || !r.source))
        throw new Error(`${path}: ${t.id}/${r.model}: "source" must be a non-empty string`);
    }
  }
  return raw;
}

/** A run is comparable with a published table when it ran the same task set in full. */
export function comparable(run: RunAnalysis, table: LeaderboardTable): boolean {
  return run.taskSet === table.taskSet && run.scores.total === table.tasks;
}
