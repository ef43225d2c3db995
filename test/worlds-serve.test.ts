/**
 * `ehrgym serve` smoke tests: spawn the CLI, read the printed base URL, query the server, stop it with SIGTERM;
 * bad flags fail with one `ehrgym: …` line and a non-zero exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { type ServedCli, spawnServe } from './helpers/serve.js';

const CLI = ['--import', 'tsx', 'src/cli/index.ts', 'serve'];

interface Running {
  url: string;
  firstLine: string;
  stop: ServedCli['stop'];
}

/** Ready once the first line (the base URL, or the --json summary) is printed. */
async function start(args: string[]): Promise<Running> {
  const firstUrl = (stdout: string) => /(http:\/\/\S+\/fhir\/)/.exec(stdout.split('\n')[0]!);
  const s = await spawnServe(args, (stdout) => stdout.includes('\n') && firstUrl(stdout) !== null, 60_000);
  return { url: firstUrl(s.stdout)![1]!, firstLine: s.stdout.split('\n')[0]!, stop: s.stop };
}

test('serve the replica on a free port: base URL, metadata, a grader query, clean SIGTERM', async () => {
  const s = await start(['--port', '0']);
  try {
    assert.match(s.firstLine, /^ehrgym FHIR R4 server \(world medagentbench, \d{3},\d{3} resources\) at http:\/\/127\.0\.0\.1:\d+\/fhir\/$/);
    const meta = await fetch(`${s.url}metadata`);
    assert.equal(meta.status, 200);
    assert.match(meta.headers.get('content-type') ?? '', /^application\/fhir\+json/);
    assert.equal(((await meta.json()) as { resourceType: string }).resourceType, 'CapabilityStatement');
    // task4_20: S0636132's latest MG in the last 24 h is 2.0, printed as the server stores it.
    const r = await fetch(`${s.url}Observation?patient=S0636132&code=MG&_sort=-date&_count=1&_format=json`);
    const text = await r.text();
    assert.match(text, /"value": 2\.0,/);
  } finally {
    const { code, stdout } = await s.stop('SIGTERM');
    assert.equal(code, 0);
    assert.match(stdout, /server stopped/);
  }
});

test('serve a synthetic cohort with imports, --json summary, SIGINT', async () => {
  const s = await start([
    '--world',
    'synthetic',
    '--seed',
    '5',
    '--patients',
    '3',
    '--port',
    '0',
    '--json',
    '--import',
    'test/fixtures/fhir-samples/synthea-bulk-ndjson-10-patients',
    '--skip-billing',
  ]);
  try {
    const info = JSON.parse(s.firstLine) as {
      url: string;
      world: string;
      seed: number;
      counts: Record<string, number>;
      imports: { unresolved: { total: number } };
    };
    assert.equal(info.world, 'synthetic');
    assert.equal(info.seed, 5);
    assert.equal(info.counts.Patient, 3 + 13);
    assert.ok(info.imports.unresolved.total > 0);
    const b = (await (await fetch(`${s.url}Patient?identifier=S9&_count=50`)).json()) as { total?: number };
    assert.equal(typeof b.total, 'number');
  } finally {
    assert.equal((await s.stop('SIGINT')).code, 0);
  }
});

test('bad flags: one line naming the flag, non-zero exit', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--port', '70000'], /^ehrgym: --port must be between 0 and 65535, got 70000\n$/],
    [['--port', 'abc'], /^ehrgym: --port must be an integer, got "abc"\n$/],
    [['--world', 'mars'], /^ehrgym: --world must be one of medagentbench, synthetic, empty, got "mars"\n$/],
    [['--seed', '3'], /^ehrgym: --seed and --patients apply to --world synthetic only \(world is medagentbench\)\n$/],
    [['--world', 'synthetic', '--patients', '0'], /^ehrgym: --patients must be between 1 and 500, got 0\n$/],
    [['--world', 'synthetic', '--patients', '501'], /^ehrgym: --patients must be between 1 and 500, got 501\n$/],
    [['--world', 'empty', '--import', '/nonexistent/ehrgym.ndjson'], /^ehrgym: --import \/nonexistent\/ehrgym\.ndjson: no such file or directory\n$/],
  ];
  // In-process (the same `main` the binary runs), capturing stderr; one spawned case proves the exit code.
  const { main } = await import('../src/cli/index.js');
  for (const [args, re] of cases) {
    let err = '';
    const orig = process.stderr.write.bind(process.stderr);
    (process.stderr as { write: unknown }).write = (chunk: string | Uint8Array) => ((err += String(chunk)), true);
    let code: number;
    try {
      code = await main(['node', 'ehrgym', 'serve', ...args]);
    } finally {
      (process.stderr as { write: unknown }).write = orig;
    }
    assert.notEqual(code, 0, args.join(' '));
    assert.match(err, re, args.join(' '));
  }
  // A port that is taken: one line, exit code 1.
  const net = await import('node:net');
  const blocker = net.createServer();
  await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', () => res()));
  const port = (blocker.address() as { port: number }).port;
  let err = '';
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (chunk: string | Uint8Array) => ((err += String(chunk)), true);
  let code: number;
  try {
    code = await main(['node', 'ehrgym', 'serve', '--world', 'empty', '--port', String(port)]);
  } finally {
    (process.stderr as { write: unknown }).write = orig;
    blocker.close();
  }
  assert.equal(code, 1);
  assert.equal(err, `ehrgym: --port ${port}: address already in use on 127.0.0.1\n`);
  const r = spawnSync(process.execPath, [...CLI, '--port', '70000'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'ehrgym: --port must be between 0 and 65535, got 70000\n');
});
