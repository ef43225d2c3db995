/**
 * Errors the factory raises for bad input (flag, file, folder). The CLI turns them into one-line `ehrgym: …`
 * messages with exit code 2; `FactoryFailure` (a check that failed on well-formed input) maps to exit code 1.
 */
export class FactoryInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FactoryInputError';
  }
}

export class FactoryFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FactoryFailure';
  }
}
