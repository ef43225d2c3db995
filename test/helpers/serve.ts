/**
 * `ehrgym serve` as a child process for the serve tests: spawn the CLI, wait until its stdout says it is ready, and stop
 * it with a signal. Fails when the server exits before it is ready or is not ready within `timeoutMs`.
 */
import { spawn } from 'node:child_process';

export interface ServedCli {
  /** stdout and stderr as printed up to readiness. */
  stdout: string;
  stderr: string;
  /** Send `signal` (default SIGTERM); resolves with the exit code and everything printed. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export function spawnServe(args: string[], ready: (stdout: string) => boolean, timeoutMs = 120_000, command: string[] = ['serve']): Promise<ServedCli> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server not ready: ${stdout} ${stderr}`));
    }, timeoutMs);
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!ready(stdout)) return;
      clearTimeout(timer);
      resolve({
        stdout,
        stderr,
        stop: async (signal = 'SIGTERM') => {
          child.kill(signal);
          const code = await exited;
          return { code, stdout, stderr };
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited early (${code}): ${stdout} ${stderr}`));
    });
  });
}
