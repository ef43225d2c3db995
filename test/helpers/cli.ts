/**
 * Runs the real CLI entry (`main` of src/cli/index.ts) in-process and captures what it prints. Binary chunks pass
 * through (the test runner's own protocol to its parent); the exit code is returned and process.exitCode restored.
 */
export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../../src/cli/index.js');
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: unknown, ...rest: unknown[]) =>
    typeof s === 'string' ? ((out += s), true) : (o as (...a: unknown[]) => boolean)(s, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((s: unknown, ...rest: unknown[]) =>
    typeof s === 'string' ? ((err += s), true) : (e as (...a: unknown[]) => boolean)(s, ...rest)) as typeof process.stderr.write;
  const before = process.exitCode;
  try {
    const code = await main(['node', 'ehrgym', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    process.exitCode = before;
  }
}
