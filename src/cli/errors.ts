/**
 * An error the CLI reports as one line (`ehrgym: <message>`) with a meaningful exit code.
 * Exit codes: 1 = operation failed, 2 = bad usage or bad input (flag, file), 3 = external service unreachable.
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = 2) {
    super(message);
    this.name = 'CliError';
  }
}
