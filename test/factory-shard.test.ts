/**
 * Sharded corpora (`ehrgym generate … --shard i/N`, `ehrgym merge`): 4 shards merged are the corpus `ehrgym generate`
 * writes unsharded, every file byte for byte (rows, splits, drops, manifest, card, identity); bad merges refused with
 * one line naming the folder; a shard killed with SIGKILL leaves no shard, and run again it merges the same.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ehrgym-fshard-'));
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
  return r.out;
}

/** Every file of two folders (dot files included), byte for byte. */
function assertSameFolder(a: string, b: string): void {
  const names = readdirSync(a).sort();
  assert.deepEqual(readdirSync(b).sort(), names);
  for (const n of names) assert.ok(readFileSync(join(a, n)).equals(readFileSync(join(b, n))), `${n} differs`);
}

/**
 * `generate FLAGS` unsharded into <root>/corpus (then moved to <root>/whole), as `n` shards, merged into
 * <root>/corpus (the same --out, which the manifest and card record): the two folders must be identical.
 */
async function shardedEqualsUnsharded(flags: string[], n: number): Promise<{ root: string; shards: string[]; mergeOut: string }> {
  const root = tmp();
  const out = join(root, 'corpus');
  await ok('generate', '--out', out, ...flags, '--json');
  renameSync(out, join(root, 'whole'));
  const shards: string[] = [];
  for (let i = 0; i < n; i++) {
    const dir = join(root, `shard-${i}`);
    const m = JSON.parse(await ok('generate', '--out', dir, ...flags, '--shard', `${i}/${n}`, '--json'));
    assert.deepEqual(m.shard, { index: i, count: n });
    shards.push(dir);
  }
  // any order
  const mergeOut = await ok('merge', ...[...shards].reverse(), '--out', out);
  assertSameFolder(join(root, 'whole'), out);
  return { root, shards, mergeOut };
}

/** The 4-shard corpus of the first test, reused by the refusals and the kill test. */
let made4: { root: string; shards: string[]; flags: string[] } | undefined;

test('4 shards of generate, merged: byte-identical to the unsharded corpus (splits, augmentations, later rounds, card)', async () => {
  // task7's branches run out of patients on a 30-patient cohort: the merge solves the rounds after the first
  const flags = ['--families', 'task1,task7', '--size', '30', '--patients', '30', '--valid-fraction', '0.25', '--augment', 'variants,paraphrase'];
  const { root, shards, mergeOut } = await shardedEqualsUnsharded([...flags, '--tokenizer', 'estimate'], 4);
  made4 = { root, shards, flags: [...flags, '--tokenizer', 'estimate'] };
  assert.match(mergeOut, /^merged 4 shards into .*: \d+ rows \(train \d+, valid \d+\); \d+ first-round episodes from the shards/);
  const later = Number(/(\d+) of later rounds solved here/.exec(mergeOut)![1]);
  assert.ok(later > 0, mergeOut);
  // every shard has the same corpus identity, and solved a disjoint part of the first round
  const ms = shards.map((d) => JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')));
  assert.equal(new Set(ms.map((m) => m.corpus_id)).size, 1);
  assert.equal(JSON.parse(readFileSync(join(root, 'corpus', 'manifest.json'), 'utf8')).corpus_id, ms[0].corpus_id);
  assert.equal(
    ms.reduce((a, m) => a + m.round1.solved_here, 0),
    ms[0].round1.instances,
  );
  // a task's augmented copies (other solution paths, paraphrases) stay in its shard
  const taskOf = (session: string) => session.replace(/-[^-]+(-p)?$/, '');
  const tasksOf = (d: string) =>
    readFileSync(join(d, 'solved.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => taskOf(JSON.parse(l).session));
  const owner = new Map<string, string>();
  for (const d of shards) {
    for (const t of tasksOf(d)) {
      assert.ok(owner.get(t) === undefined || owner.get(t) === d, `${t} in two shards`);
      owner.set(t, d);
    }
  }
});

test('bad merges refused with one line naming the folder; a shard killed with SIGKILL runs again and merges the same', async () => {
  assert.ok(made4, 'the first test made the shards');
  const { root, shards, flags } = made4;
  const [s0, s1, s2, s3] = shards;
  const refuse = async (dirs: string[], message: string | RegExp) => {
    const out = join(root, `merged-${Math.random().toString(36).slice(2)}`);
    const r = await cli('merge', ...dirs, '--out', out);
    assert.equal(r.code, 2, r.err);
    if (typeof message === 'string') assert.equal(r.err, `ehrgym: ${message}\n`);
    else assert.match(r.err, message);
    assert.equal(r.err.split('\n').length, 2, r.err);
    assert.ok(!existsSync(out));
  };
  const other = join(root, 'other');
  await ok('generate', '--out', other, ...flags, '--seed', '2', '--shard', '1/4', '--json');
  await refuse(
    [s0, other, s2, s3],
    new RegExp(`^ehrgym: ${other}: a shard of a different corpus \\(identity [0-9a-f]{12}, 4 shards\\) than ${s0} \\(identity [0-9a-f]{12}, 4 shards\\)\n$`),
  );
  await refuse([s0, s2, s3], `missing shard 1/4 of the corpus in ${s0} (3 of 4 given)`);
  await refuse([s0, s1, s3], `missing shard 2/4 of the corpus in ${s0} (3 of 4 given)`);
  const copy = join(root, 's0-copy');
  cpSync(s0, copy, { recursive: true });
  await refuse([s0, s1, copy, s2, s3], `${copy}: shard 0/4 is given twice (also ${s0})`);
  // a corpus is not a shard; a run folder shard and a corpus shard do not mix
  const corpus = join(root, 'corpus');
  await refuse([s0, corpus], `${corpus}: a corpus, not a corpus shard (make shards with ehrgym generate … --shard i/N)`);
  const run = join(root, 'run-0');
  await ok('eval', '--agent', 'oracle', '--tasks-filter', 'task4', '--limit', '2', '--shard', '0/4', '--out', run, '--no-progress', '--json');
  await refuse([s0, run], `${run}: a run folder (ehrgym eval --shard), while ${s0} is a corpus shard (ehrgym generate --shard); merge the shards of one kind`);

  // shard 1 made again and killed with SIGKILL: nothing (or only its temporary folder) is left, and the merge says so
  rmSync(s1, { recursive: true });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'generate', '--out', s1, ...flags, '--shard', '1/4'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number>((r) => child.on('exit', (code, sig) => r(sig ? -1 : (code ?? 0))));
  const t0 = Date.now();
  const base = s1.slice(s1.lastIndexOf('/') + 1);
  const writing = () => readdirSync(root).some((n) => n.startsWith(`.${base}.tmp-`));
  while (Date.now() - t0 < 3000 && !writing() && child.exitCode === null) await sleep(5);
  child.kill('SIGKILL');
  assert.equal(await exited, -1, 'killed before finishing');
  assert.ok(!existsSync(join(s1, '.ehrgym.json')));
  const early = await cli('merge', s0, s1, s2, s3, '--out', join(root, 'early'));
  assert.equal(early.code, 2);
  assert.match(
    early.err,
    writing()
      ? new RegExp(`^ehrgym: ${s1}: the shard did not finish \\(only its temporary folder .* is there\\); run it again\n$`)
      : new RegExp(`^ehrgym: ${s1}: no such folder\n$`),
  );
  // run again (the same command): the merge is the unsharded corpus, byte for byte
  await ok('generate', '--out', s1, ...flags, '--shard', '1/4', '--json');
  rmSync(corpus, { recursive: true });
  await ok('merge', s3, s1, s0, s2, '--out', corpus);
  assertSameFolder(join(root, 'whole'), corpus);
});
