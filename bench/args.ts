/** `--name N` from the command line of a benchmark, or `dflt`; throws unless N is positive (an integer if asked). */
export function numberArg(name: string, dflt: number, opts: { integer?: boolean } = {}): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (opts.integer ? !Number.isInteger(v) || v <= 0 : !Number.isFinite(v) || v <= 0) {
    throw new Error(`bench: --${name} needs a positive ${opts.integer ? 'integer' : 'number'}`);
  }
  return v;
}
