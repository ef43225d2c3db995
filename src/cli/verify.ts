/**
 * `ehrgym verify DIR`: re-execute every row of a corpus against its world and re-grade it.
 */
import type { Command } from 'commander';
import { CliError, fromFactoryError } from './errors.js';
import { verifyCorpus } from '../factory/verify.js';
import { realDeps } from '../factory/deps.js';

export function register(program: Command): void {
  program
    .command('verify')
    .description('re-execute every row of a corpus against its world over HTTP and re-grade it')
    .argument('<dir>', 'corpus folder written by `ehrgym generate`')
    .option('--json', 'print the report as JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym verify out/sft
  ehrgym verify ehrgym-demo/sft --json      # the demo's corpus
`,
    )
    .action(async (dir: string, o: { json: boolean }) => {
      let r;
      try {
        r = await verifyCorpus(dir, realDeps());
      } catch (e) {
        throw fromFactoryError(e);
      }
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        const w = (s: string) => process.stdout.write(s + '\n');
        w(`verified ${dir}: ${r.passed}/${r.total - r.skipped} rows pass (${r.failed} failed, ${r.skipped} skipped)`);
        for (const [fam, f] of Object.entries(r.perFamily)) w(`  ${fam.padEnd(7)} ${f.passed}/${f.total}`);
        for (const f of r.failures.slice(0, 20)) w(`  FAIL ${f.split}:${f.line} ${f.row_id}: ${f.reason}`);
        for (const [k, v] of Object.entries(r.skippedReasons)) w(`  skipped ${v}: ${k}`);
      }
      if (r.failed > 0) throw new CliError(`verify: ${r.failed} of ${r.total - r.skipped} rows failed`, 1);
    });
}
