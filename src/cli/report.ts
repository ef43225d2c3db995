import type { Command } from 'commander';
import { resolve } from 'node:path';
import { CliError } from './errors.js';
import { outputPath } from './flags.js';
import { buildReport, reportJson, RunFolderError, writeReport } from '../report/index.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('scores, leaderboard, behaviour analysis and comparison of run folders → report.md + report.html')
    .argument('<run-dir...>', 'run folders written by `ehrgym eval` (the first is the baseline of comparisons)')
    .option('--out <dir>', 'output folder for report.md, report.html and report.json', 'report')
    .option('--json', 'print the report data as JSON on stdout (the files are written too)')
    .addHelpText(
      'after',
      `
Examples:
  ehrgym report ehrgym-demo/runs/finish-empty ehrgym-demo/runs/oracle --out out/report   # after \`ehrgym demo\`
  ehrgym report runs/oracle runs/qwen3-8b --out out/report                              # runs/qwen3-8b compared with runs/oracle
  ehrgym report runs/qwen3-8b --json > qwen3-8b.json
`,
    )
    .action(async (dirs: string[], opts: { out: string; json?: boolean }) => {
      outputPath('--out', opts.out, 'dir');
      let data;
      try {
        data = buildReport(dirs);
      } catch (err) {
        if (err instanceof RunFolderError) throw new CliError(err.message);
        throw err;
      }
      const written = await writeReport(data, resolve(opts.out));
      if (opts.json) {
        process.stdout.write(reportJson(data));
        return;
      }
      for (const r of data.runs) {
        const s = r.scores;
        process.stdout.write(
          `${r.label}: ${(s.successRate * 100).toFixed(2)}% (${s.correct}/${s.total}, 95% CI ${(s.ci95.low * 100).toFixed(1)}–${(s.ci95.high * 100).toFixed(1)}%)\n`,
        );
      }
      for (const c of data.comparisons) {
        process.stdout.write(`${c.other} vs ${c.base}: ${c.fixed.length} fixed, ${c.broken.length} broken, McNemar p = ${c.mcnemar.pValue.toPrecision(4)}\n`);
      }
      process.stdout.write(`wrote ${written.files.md}, ${written.files.html}, ${written.files.json}\n`);
    });
}
