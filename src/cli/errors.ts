/**
 * An error the CLI reports as one line (`ehrgym: <message>`) with a meaningful exit code.
 * Exit codes: 1 = operation failed, 2 = bad usage or bad input (flag, file), 3 = external service unreachable.
 */
import { FactoryFailure, FactoryInputError } from '../factory/errors.js';
import { EvalError } from '../eval/run.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A data-factory error as the CLI reports it: bad input → exit 2, a failed check → exit 1; anything else as is. */
export function fromFactoryError(e: unknown): unknown {
  if (e instanceof FactoryInputError) return new CliError(e.message, 2);
  if (e instanceof FactoryFailure) return new CliError(e.message, 1);
  return e;
}

/** Run `fn`, reporting an eval set-up error (a bad task set, world or flag value) as one line with exit 2. */
export function evalInput<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof EvalError) throw new CliError(err.message);
    throw err;
  }
}
