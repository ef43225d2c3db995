/**
 * Writes the clinical suite's frozen test split: data/ehrgym-clinical/test.json (official task-file format, every
 * record carrying its world) and data/ehrgym-clinical/manifest.json (suite version, generator seed, world seed,
 * patients and fingerprint, branch counts, sha256 of test.json). See src/tasks/suite/splits.ts.
 *
 * Run: node --import tsx scripts/gen-clinical.ts [--check]   (cwd = repo root; `--check` fails if the files differ)
 * Deterministic: same code → same bytes (test/suite-splits.test.ts regenerates and compares).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { buildSuiteSplit, openClinicalWorld, renderTestSplit } from '../src/tasks/suite/splits.js';

const OUT = 'data/ehrgym-clinical';
const check = process.argv.includes('--check');
const cw = await openClinicalWorld();
const tasks = await buildSuiteSplit(cw.access, { split: 'test', patientIds: cw.world.patientIds });
const { taskFile, manifest } = renderTestSplit(tasks, cw.record);
const files: Array<[string, string]> = [
  [`${OUT}/test.json`, taskFile],
  [`${OUT}/manifest.json`, manifest],
];
if (check) {
  const differ = files.filter(([p, text]) => {
    try {
      return readFileSync(p, 'utf8') !== text;
    } catch {
      return true;
    }
  });
  if (differ.length > 0) {
    process.stderr.write(`gen-clinical: ${differ.map(([p]) => p).join(', ')} differ from what the generators make now\n`);
    process.exit(1);
  }
  process.stdout.write(`gen-clinical: ${tasks.length} tasks, files up to date\n`);
} else {
  mkdirSync(OUT, { recursive: true });
  for (const [p, text] of files) writeFileSync(p, text);
  process.stdout.write(`gen-clinical: wrote ${tasks.length} tasks to ${OUT}/test.json\n`);
}
