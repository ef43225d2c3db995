/**
 * `ehrgym tasks list [--set NAME|FILE] [--json]`
 * `ehrgym tasks generate --out FILE [--world synthetic|medagentbench] [--seed N] [--patients N] [--families LIST]
 *                        [--per-family N] [--balance balanced|natural] [--rng-seed N] [--facts FILE] [--force]`
 *
 * `ehrgym tasks solve --id TASK_ID [--set NAME|FILE] [--variant NAME] [--world …] [--seed N] [--patients N] [--json]`
 *
 * Lists the task families (or a task set's composition), writes a new task set in the official file format from
 * the families' generators over a world (replica: non-evaluation patients only), or plays one task with the expert
 * solver in the official episode loop and prints the trajectory and the official grader's checks.
 */
import { taskDialect } from '../protocol/dialect.js';
import { suitePlantings } from '../tasks/registry.js';
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { DEFAULT_PATIENTS, intFlag, outputPath } from './flags.js';
import { MAX_SYNTHETIC_PATIENTS } from '../worlds/synthetic.js';
import { loadWorld, evaluationMrns, DEFAULT_SYNTHETIC_PATIENTS, DEFAULT_SYNTHETIC_SEED, type WorldName } from '../worlds/index.js';
import { rngFor } from '../worlds/prng.js';
import { createFhirHandler } from '../fhir/server.js';
import { handlerTransport } from '../fhir/client.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { FAMILIES, FAMILY_IDS, isFamilyId, plantRequest, SUITE_FAMILY_IDS } from '../tasks/registry.js';
import { checkWorldFingerprint, loadTaskSet, TaskSetError, worldForTaskSet } from '../tasks/loader.js';
import { BALANCE_MODES, buildTaskSet, renderFactsJsonl, renderTaskFile, type BalanceMode } from '../tasks/taskset.js';
import type { FamilyId } from '../tasks/types.js';
import { getFamily } from '../tasks/registry.js';
import { pyJsonDumps } from '../tasks/pysem.js';
import { runEpisode } from '../agent/loop.js';
import { PolicyAgent } from '../agent/backends/scripted.js';
import { gradeOutput } from '../tasks/grade.js';

/** `--world` (synthetic | medagentbench) with `--seed` / `--patients` (synthetic only), as `loadWorld` options. */
function worldFlags(o: { world: string; seed?: string; patients?: string }): Parameters<typeof loadWorld>[0] {
  if (o.world !== 'synthetic' && o.world !== 'medagentbench') {
    throw new CliError(`--world must be synthetic or medagentbench, got "${o.world}"`);
  }
  const seed = o.seed !== undefined ? intFlag('--seed', o.seed, 0, 2 ** 32 - 1) : undefined;
  const patients = o.patients !== undefined ? intFlag('--patients', o.patients, 1, MAX_SYNTHETIC_PATIENTS) : undefined;
  if (o.world !== 'synthetic' && (seed !== undefined || patients !== undefined)) {
    throw new CliError(`--seed and --patients apply to --world synthetic only (world is ${o.world})`);
  }
  return { world: o.world as WorldName, ...(o.world === 'synthetic' ? { seed, patients: patients ?? DEFAULT_PATIENTS } : {}) };
}

interface GenerateFlags {
  out: string;
  world: string;
  seed?: string;
  patients?: string;
  families?: string;
  perFamily: string;
  balance: string;
  rngSeed: string;
  facts?: string;
  force: boolean;
}

export function register(program: Command): void {
  const tasks = program.command('tasks').description('MedAgentBench task families: list them, generate new task sets');

  tasks
    .command('list')
    .description('list the task families, or the composition of a task set')
    .option('--set <name|file>', 'a task set (medagentbench-v1, medagentbench-v2 or a task file)')
    .option('--json', 'print JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym tasks list
  ehrgym tasks list --set medagentbench-v2 --json
`,
    )
    .action((o: { set?: string; json: boolean }) => {
      let counts: Record<string, number> | undefined;
      if (o.set !== undefined) {
        try {
          const s = loadTaskSet(o.set);
          counts = {};
          for (const t of s.tasks) counts[t.id.split('_')[0]] = (counts[t.id.split('_')[0]] ?? 0) + 1;
        } catch (e) {
          if (e instanceof TaskSetError) throw new CliError(`--set: ${e.message}`);
          throw e;
        }
      }
      // a suite set (--set ehrgym-clinical) lists its families after MedAgentBench's
      const rows = [...FAMILY_IDS, ...SUITE_FAMILY_IDS.filter((id) => counts?.[id])].map((id) => ({
        id,
        kind: FAMILIES[id].kind,
        name: FAMILIES[id].name,
        branches: FAMILIES[id].branches,
        variants: FAMILIES[id].variants,
        ...(counts ? { tasks: counts[id] ?? 0 } : {}),
      }));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return;
      }
      for (const r of rows) {
        const n = r.tasks !== undefined ? `${String(r.tasks).padStart(4)}  ` : '';
        process.stdout.write(`${r.id.padEnd(7)} ${r.kind.padEnd(7)}${n}${r.name}  [${r.branches.join(', ')}]  variants: ${r.variants.join(', ')}\n`);
      }
    });

  tasks
    .command('solve')
    .description('play one task with the expert solver in the official loop; print the trajectory and the grade')
    .requiredOption('--id <task>', 'task id, e.g. task5_21')
    .option('--set <name|file>', 'task set', 'medagentbench-v2')
    .option('--variant <name>', 'solver variant (see `ehrgym tasks list`)')
    .option('--world <name>', 'medagentbench | synthetic (default: the world the task set was made on)')
    .option('--seed <n>', `synthetic world: seed (default: recorded in the task set, else ${DEFAULT_SYNTHETIC_SEED})`)
    .option('--patients <n>', `synthetic world: number of patients, 1..${MAX_SYNTHETIC_PATIENTS} (default: recorded in the task set, else ${DEFAULT_PATIENTS})`)
    .option('--json', 'print the output and the grade as one JSON line', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym tasks solve --id task5_21
  ehrgym tasks solve --id task9_3 --variant sorted --json
  ehrgym tasks solve --id task1_1 --set out/tasks.json          # a set written by \`tasks generate\` (its world is recorded)
`,
    )
    .action(async (o: { id: string; set: string; variant?: string; world?: string; seed?: string; patients?: string; json: boolean }) => {
      if (o.world !== undefined && o.world !== 'synthetic' && o.world !== 'medagentbench') {
        throw new CliError(`--world must be synthetic or medagentbench, got "${o.world}"`);
      }
      const seed = o.seed !== undefined ? intFlag('--seed', o.seed, 0, 2 ** 32 - 1) : undefined;
      const patients = o.patients !== undefined ? intFlag('--patients', o.patients, 1, MAX_SYNTHETIC_PATIENTS) : undefined;
      let set;
      try {
        set = loadTaskSet(o.set);
      } catch (e) {
        if (e instanceof TaskSetError) throw new CliError(`--set: ${e.message}`);
        throw e;
      }
      let worldOpts: Parameters<typeof loadWorld>[0];
      try {
        const w = worldForTaskSet(set, { world: o.world, seed, patients }, { seed: DEFAULT_SYNTHETIC_SEED, patients: DEFAULT_SYNTHETIC_PATIENTS });
        const { suite, ...rest } = w;
        // a suite's task file records its clinical world: the suite's plantings
        worldOpts = { ...rest, world: w.world as WorldName, ...(suite !== undefined ? { plantings: suitePlantings(suite) } : {}) };
      } catch (e) {
        if (e instanceof TaskSetError) throw new CliError(e.message);
        throw e;
      }
      const index = set.tasks.findIndex((t) => t.id === o.id);
      if (index < 0) throw new CliError(`--id: no task "${o.id}" in ${set.name}`);
      const task = set.tasks[index];
      const family = getFamily(task.id);
      const variant = o.variant ?? family.variants[0];
      if (!family.variants.includes(variant)) {
        throw new CliError(`--variant: "${variant}" is not a variant of ${family.id} (known: ${family.variants.join(', ')})`);
      }
      const world = await loadWorld({ ...worldOpts, plant: plantRequest() });
      try {
        checkWorldFingerprint(set, world);
      } catch (e) {
        if (e instanceof TaskSetError) throw new CliError(`--set: ${e.message}`);
        throw e;
      }
      const handle = createFhirHandler(world.store);
      const fhir = handlerTransport(handle);
      const agent = new PolicyAgent(`expert:${variant}`, (t, history, ep) => getFamily(t.id).solve(t, history, { apiBase: ep.apiBase, variant }));
      // suite tasks write: their episode runs in a session (live), and the grader replays it in a scratch session
      const session = `tasks-solve-${task.id}`;
      const live = taskDialect(task).put;
      const { output } = await runEpisode({
        index,
        task,
        agent,
        fhir: live ? handlerTransport(handle, { session }) : fhir,
        apiBase: OFFICIAL_API_BASE,
        ...(live ? { postMode: 'live' as const } : {}),
      });
      if (live) world.store.dropSession(session);
      const grade = await gradeOutput(task, output, {
        apiBase: OFFICIAL_API_BASE,
        fhir,
        openSession: async (name) => ({ transport: handlerTransport(handle, { session: name }), close: async () => void world.store.dropSession(name) }),
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ task, variant, output, grade })}\n`);
        return;
      }
      for (const h of output.history ?? []) {
        const text = h.content.length > 400 ? `${h.content.slice(0, 400)}… [${h.content.length} chars]` : h.content;
        process.stdout.write(`--- ${h.role}\n${text}\n`);
      }
      process.stdout.write(
        `=== ${task.id} (${family.id}, variant ${variant}) status ${output.status}: ${grade.correct ? 'CORRECT' : 'INCORRECT'}; branch ${grade.branch ?? '-'}; reference ${grade.reference === undefined ? '-' : pyJsonDumps(grade.reference)}\n`,
      );
      for (const c of grade.checks)
        process.stdout.write(
          `  ${c.pass ? 'pass' : 'FAIL'} ${c.name}${c.pass ? '' : `: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(c.actual)}${c.note ? ` (${c.note})` : ''}`}\n`,
        );
      if (grade.exception) process.stdout.write(`  exception: ${grade.exception}\n`);
    });

  tasks
    .command('generate')
    .description('write a new task set (official file format) generated over a world')
    .requiredOption('--out <file>', 'task file to write')
    .option('--world <name>', 'synthetic | medagentbench (non-evaluation patients)', 'synthetic')
    .option('--seed <n>', 'synthetic world: seed (default 1)')
    .option('--patients <n>', `synthetic world: number of patients, 1..${MAX_SYNTHETIC_PATIENTS} (default ${DEFAULT_PATIENTS})`)
    .option('--families <list>', `comma-separated families (default all: ${FAMILY_IDS.join(',')})`)
    .option('--per-family <n>', 'instances per family', '30')
    .option('--balance <mode>', `branch mix: ${BALANCE_MODES.join(' | ')}`, 'balanced')
    .option('--rng-seed <n>', 'seed of the generators (patient order, near-duplicates)', '1')
    .option('--facts <file>', 'also write one JSON line per task with its branch, patient and facts')
    .option('--force', 'overwrite existing output files', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym tasks generate --out out/tasks.json                       # 300 tasks over a synthetic cohort (seed 1)
  ehrgym tasks generate --out out/tasks.json --world synthetic --seed 7 --patients 200 --per-family 10 --facts out/facts.jsonl
  ehrgym tasks generate --out out/replica-tasks.json --world medagentbench --families task5,task9
`,
    )
    .action(async (o: GenerateFlags) => {
      outputPath('--out', o.out, 'file');
      if (o.facts !== undefined) outputPath('--facts', o.facts, 'file');
      const worldOpts = worldFlags(o);
      const perFamily = intFlag('--per-family', o.perFamily, 1, 100_000);
      const rngSeed = intFlag('--rng-seed', o.rngSeed, 0, 2 ** 32 - 1);
      if (!(BALANCE_MODES as readonly string[]).includes(o.balance)) {
        throw new CliError(`--balance must be one of ${BALANCE_MODES.join(', ')}, got "${o.balance}"`);
      }
      const families = (o.families ?? FAMILY_IDS.join(','))
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const f of families) {
        if (!isFamilyId(f)) throw new CliError(`--families: unknown task family "${f}" (known: ${FAMILY_IDS.join(', ')})`);
      }
      if (families.length === 0) throw new CliError('--families must name at least one family');
      for (const [flag, path] of [
        ['--out', o.out],
        ['--facts', o.facts],
      ] as const) {
        if (path !== undefined && existsSync(path) && !o.force) throw new CliError(`${flag}: ${path} exists (use --force to overwrite)`);
      }
      const world = await loadWorld({ ...worldOpts, plant: plantRequest() });
      const evalSet = new Set(o.world === 'medagentbench' ? evaluationMrns() : []);
      const candidates = world.patientIds.filter((id) => !evalSet.has(id));
      const access = { apiBase: OFFICIAL_API_BASE, fhir: handlerTransport(createFhirHandler(world.store)) };
      const built = await buildTaskSet(access, {
        families: families as FamilyId[],
        patients: candidates,
        perFamily,
        balance: o.balance as BalanceMode,
        rngFor: (family, branch) => rngFor('tasks', rngSeed, family, branch),
      });
      try {
        // the file records its world, so eval/grade/solve use it and refuse another
        const record =
          world.name === 'synthetic'
            ? { name: world.name, seed: world.seed, patients: world.patientIds.length, fingerprint: world.fingerprint }
            : { name: world.name, fingerprint: world.fingerprint };
        writeFileSync(o.out, renderTaskFile(built.tasks, record));
        if (o.facts !== undefined) writeFileSync(o.facts, renderFactsJsonl(built.tasks));
      } catch (e) {
        throw new CliError(`cannot write output: ${(e as Error).message}`, 1);
      }
      const short = built.summary.filter((s) => s.got < s.wanted);
      process.stdout.write(`wrote ${built.tasks.length} tasks to ${o.out} (world ${world.name}, fingerprint ${world.fingerprint.slice(0, 12)})\n`);
      for (const s of built.summary) process.stdout.write(`  ${s.family} ${s.branch}: ${s.got}/${s.wanted}\n`);
      if (short.length) process.stderr.write(`ehrgym: warning: ${short.length} branch quota(s) not filled (too few matching patients)\n`);
    });
}
