/**
 * One error style for every command: `ehrgym: <message>` on stderr and exit code 2 for bad input, commander's own
 * parse errors included; URL flags, output paths and `eval --resume` checked before any work starts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { formatCommanderError } from '../src/cli/index.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ehrgym-cli-err-'));
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

async function expectError(args: string[], message: string | RegExp, code = 2): Promise<void> {
  const r = await cli(...args);
  assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
  if (typeof message === 'string') assert.equal(r.err, `ehrgym: ${message}\n`, args.join(' '));
  else assert.match(r.err, message, args.join(' '));
  assert.equal(r.out, '', args.join(' '));
}

test('an unknown option is named first, with a suggestion, even when a required option is missing', async () => {
  await expectError(['eval', '--agnet', 'oracle'], "unknown option '--agnet' (Did you mean --agent?)");
  await expectError(['eval', '--agent', 'oracle', '--out', 'x', '--concurency', '4'], "unknown option '--concurency' (Did you mean --concurrency?)");
  await expectError(['grade', '--run', 'x.jsonl'], "unknown option '--run' (Did you mean --runs?)");
  await expectError(['serve', '--prot', '8080'], "unknown option '--prot' (Did you mean --port?)");
  await expectError(['tasks', 'generate', '--ot', 'x.json'], "unknown option '--ot' (Did you mean --out?)");
  await expectError(['demo', '--outt', 'x'], "unknown option '--outt' (Did you mean --out?)");
  await expectError(['evl'], "unknown command 'evl' (Did you mean eval?)");
});

test("commander's parse errors print as one `ehrgym:` line and exit 2 in every command", async () => {
  await expectError(['eval', '--out', 'x'], "required option '--agent <spec>' not specified");
  await expectError(['eval', '--agent', 'oracle'], "required option '--out <dir>' not specified");
  await expectError(['grade'], "required option '--runs <runs.jsonl>' not specified");
  await expectError(['export', 'dir', '--out', 'x'], "required option '--format <format>' not specified");
  await expectError(['train-config', '--data', 'd', '--out', 'o'], "required option '--trainer <name>' not specified");
  await expectError(['tasks', 'solve'], "required option '--id <task>' not specified");
  await expectError(['generate'], "required option '--out <dir>' not specified");
  await expectError(['export'], "missing required argument 'dir'");
  await expectError(['report'], "missing required argument 'run-dir'");
  await expectError(['view'], "missing required argument 'run-dir'");
  await expectError(['verify'], "missing required argument 'dir'");
  await expectError(['eval', '--agent', 'oracle', '--out', 'x', '--concurrency'], "option '--concurrency <n>' argument missing");
  await expectError(
    ['eval', '--agent', 'oracle', '--out', 'x', '--post-mode', 'send'],
    "option '--post-mode <mode>' argument 'send' is invalid. Allowed choices are official, live.",
  );
  await expectError(['verify', 'a', 'b'], "too many arguments for 'verify'. Expected 1 argument but got 2.");
  // a command group without its subcommand prints the group's help on stderr, exit 2
  const r = await cli('tasks');
  assert.equal(r.code, 2);
  assert.match(r.err, /^Usage: ehrgym tasks/);
  assert.equal(formatCommanderError("error: unknown option '--x'\n(Did you mean --y?)\n"), "ehrgym: unknown option '--x' (Did you mean --y?)\n");
});

test('the binary exits 2 on a parse error (the exit code reaches the shell)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'eval', '--agnet', 'oracle'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, "ehrgym: unknown option '--agnet' (Did you mean --agent?)\n");
});

test('URL flags must be http(s) URLs: the flag, an example and the value are named', async () => {
  await expectError(
    ['eval', '--agent', 'openai:m', '--base-url', '127.0.0.1:8000', '--out', 'x'],
    '--base-url must be an http(s) URL such as http://127.0.0.1:8000/v1, got "127.0.0.1:8000"',
  );
  await expectError(
    ['eval', '--agent', 'openai:m', '--base-url', 'http://127.0.0.1:8000/v1', '--base-url', 'localhost:8001/v1', '--out', 'x'],
    '--base-url must be an http(s) URL such as http://127.0.0.1:8000/v1, got "localhost:8001/v1"',
  );
  await expectError(
    ['eval', '--agent', 'oracle', '--fhir-url', 'localhost:8080/fhir/', '--out', 'x'],
    '--fhir-url must be an http(s) URL such as http://localhost:8080/fhir/, got "localhost:8080/fhir/"',
  );
  await expectError(
    ['eval', '--agent', 'oracle', '--api-base', 'not a url', '--out', 'x'],
    '--api-base must be an http(s) URL such as http://localhost:8080/fhir/, got "not a url"',
  );
  await expectError(
    ['grade', '--runs', 'x.jsonl', '--fhir-url', 'ftp://h/fhir/'],
    '--fhir-url must be an http(s) URL such as http://localhost:8080/fhir/, got "ftp://h/fhir/"',
  );
  await expectError(['grade', '--runs', 'x.jsonl', '--api-base', '8080'], '--api-base must be an http(s) URL such as http://localhost:8080/fhir/, got "8080"');
});

test('eval --resume on a folder that does not exist is refused, naming it', async () => {
  const missing = join(tmp(), 'never-ran');
  await expectError(
    ['eval', '--agent', 'oracle', '--out', missing, '--resume'],
    `--resume: ${missing} does not exist (drop --resume to start a new run there)`,
  );
});

test('--out below a file or on a file: exit 2 naming the path, in every command with --out', async () => {
  const dir = tmp();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const below = join(file, 'sub');
  const cases: string[][] = [
    ['eval', '--agent', 'oracle', '--out', below],
    ['report', 'runs/x', '--out', below],
    ['generate', '--out', below],
    ['export', 'corpus', '--format', 'trl', '--out', below],
    ['train-config', '--trainer', 'trl', '--data', 'd', '--out', below],
    ['tasks', 'generate', '--out', join(below, 'tasks.json')],
    ['demo', '--out', below],
  ];
  for (const args of cases) await expectError(args, `--out ${args[args.indexOf('--out') + 1]}: cannot create it, ${file} is a file`);
  await expectError(['eval', '--agent', 'oracle', '--out', file], `--out ${file}: is a file, not a folder`);
  await expectError(['tasks', 'generate', '--out', dir], `--out ${dir}: is a folder, not a file`);
  await expectError(
    ['tasks', 'generate', '--out', join(dir, 't.json'), '--facts', join(below, 'f.jsonl')],
    `--facts ${join(below, 'f.jsonl')}: cannot create it, ${file} is a file`,
  );
});

test('--patients: one default (500) and one range (1..500) in every command that builds a synthetic world', async () => {
  for (const args of [['serve'], ['tasks', 'generate'], ['tasks', 'solve'], ['generate'], ['eval'], ['grade']]) {
    const r = await cli(...args, '--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /--patients <n>\s+[^(]*\(default(?::\s+recorded\s+in\s+the\s+task\s+set,\s+else)?\s+500\b/, args.join(' '));
  }
  await expectError(['tasks', 'generate', '--out', join(tmp(), 't.json'), '--patients', '501'], '--patients must be between 1 and 500, got 501');
});

test('every command has examples in --help; the top-level help lists the quick start', async () => {
  const top = await cli('--help');
  assert.equal(top.code, 0);
  assert.match(top.out, /Quick start:\n {2}npx ehrgym demo /);
  assert.match(top.out, /exit codes: 0 ok, 1 operation failed, 2 bad input/);
  const commands = [
    'demo',
    'eval',
    'grade',
    'report',
    'view',
    'serve',
    'generate',
    'verify',
    'export',
    'train-config',
    'tasks list',
    'tasks solve',
    'tasks generate',
  ];
  for (const c of commands) {
    const r = await cli(...c.split(' '), '--help');
    assert.equal(r.code, 0, c);
    assert.match(r.out, new RegExp(`\\nExamples:\\n {2}(npx )?ehrgym ${c}[ \\n]`), c);
  }
});
