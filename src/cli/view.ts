import type { Command } from 'commander';
import { CliError } from './errors.js';
import { loadRunsByTrial, RunFolderError, startViewer } from '../report/index.js';

export function register(program: Command): void {
  program
    .command('view')
    .description('local web viewer for run folders: task grid by verdict, filters, trajectories with grader checks')
    .argument('<run-dir...>', 'run folders written by `ehrgym eval`')
    .option('--port <n>', 'port to listen on (0 = any free port)', '8090')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .addHelpText(
      'after',
      `
Examples:
  ehrgym view ehrgym-demo/runs/oracle ehrgym-demo/runs/u9401066-recorded ehrgym-demo/runs/finish-empty   # after \`ehrgym demo\`
  ehrgym view runs/oracle runs/qwen3-8b --port 8090        # then open http://127.0.0.1:8090/
`,
    )
    .action(async (dirs: string[], opts: { port: string; host: string }) => {
      if (!/^\d+$/.test(opts.port) || Number(opts.port) > 65535) throw new CliError(`--port must be an integer 0-65535, got "${opts.port}"`);
      let runs;
      try {
        runs = loadRunsByTrial(dirs);
      } catch (err) {
        if (err instanceof RunFolderError) throw new CliError(err.message);
        throw err;
      }
      let viewer;
      try {
        viewer = await startViewer(runs, { port: Number(opts.port), host: opts.host });
      } catch (err) {
        const code = (err as { code?: string }).code;
        throw new CliError(`--port ${opts.port} on ${opts.host}: ${code === 'EADDRINUSE' ? 'address in use' : (err as Error).message}`, 1);
      }
      if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host)) {
        process.stderr.write(`ehrgym: warning: --host ${opts.host} exposes the run data beyond this machine\n`);
      }
      process.stdout.write(`ehrgym viewer: ${viewer.url} (${runs.map((r) => r.label).join(', ')}); Ctrl-C to stop\n`);
      await new Promise<void>((done) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void viewer.close().then(done);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
