import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runInNewContext } from 'node:vm';
import { createViewerApp, loadRuns, startViewer } from '../src/report/index.js';
import { VIEWER_NAV_JS, VIEWER_PAGE } from '../src/report/viewer-page.js';
import { baseEpisodes, ftEpisodes, ONE_OF_EACH, CLEAN_EPISODE, writeRunFolder } from './report-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-viewer-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const baseDir = writeRunFolder(join(tmp, 'base'), 'base-model', baseEpisodes());
const ftDir = writeRunFolder(join(tmp, 'finetuned'), 'finetuned-model', ftEpisodes());
const oneDir = writeRunFolder(join(tmp, 'one'), 'scripted', [...Object.values(ONE_OF_EACH).map((x) => x.episode), CLEAN_EPISODE]);

/** Send a raw HTTP request line (no client-side normalisation of `..`) and return status and body. */
function raw(port: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    let data = '';
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0), body: data.slice(data.indexOf('\r\n\r\n') + 4) }));
    s.on('error', reject);
  });
}

test('viewer API: runs, task grid data and trajectories with grader checks', async () => {
  const app = createViewerApp(loadRuns([baseDir, ftDir]));
  const runs = (await (await app.request('/api/runs')).json()) as Array<{ label: string; correct: number; total: number; behaviours: Record<string, number> }>;
  assert.deepEqual(
    runs.map((r) => [r.label, r.correct, r.total]),
    [
      ['base', 6, 12],
      ['finetuned', 10, 12],
    ],
  );
  assert.equal(runs[0]!.behaviours.fence, 6);
  const grid = (await (await app.request('/api/tasks')).json()) as {
    families: string[];
    tasks: Array<{ id: string; runs: Array<{ correct: boolean; behaviours: string[] }> }>;
  };
  assert.deepEqual(grid.families, ['task1', 'task2', 'task7']);
  assert.equal(grid.tasks.length, 12);
  const t13 = grid.tasks.find((t) => t.id === 'task1_3')!;
  assert.deepEqual(
    t13.runs.map((r) => [r.correct, r.behaviours]),
    [
      [false, ['fence']],
      [true, []],
    ],
  );
  const tr = (await (await app.request('/api/runs/0/tasks/task7_2')).json()) as { items: Array<{ kind: string; body?: string }>; grade: { checks: unknown[] } };
  assert.deepEqual(
    tr.items.map((i) => i.kind),
    ['prompt', 'GET', 'get-response', 'FINISH'],
  );
  assert.match(tr.items[2]!.body!, /^\{\n {2}"resourceType": "Bundle",/); // pretty-printed
  assert.equal(tr.grade.checks.length, 1);
  assert.equal((tr as unknown as { instruction: string }).instruction, 'What is the most recent CBG of the patient S1000002?');
  assert.deepEqual((grid as unknown as { familyNames: Record<string, string> }).familyNames, {
    task1: 'patient lookup by name and DOB',
    task2: 'patient age',
    task7: 'latest CBG',
  });
  const page = await app.request('/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
});

test('viewer: POST turns carry the parsed payload and acceptance', async () => {
  const app = createViewerApp(loadRuns([oneDir]));
  const tr = (await (await app.request('/api/runs/0/tasks/task8_1')).json()) as {
    items: Array<{ kind: string; payload?: string | null; postAccepted?: boolean; url?: string; findings: string[] }>;
  };
  const post = tr.items[1]!;
  assert.equal(post.kind, 'POST');
  assert.equal(post.postAccepted, true);
  assert.equal(post.url, 'http://localhost:8080/fhir//ServiceRequest');
  assert.deepEqual(post.findings, ['wrong-post-url']);
  assert.match(post.payload!, /"subject": \{\n {4}"reference": "Patient\/S1234567"/);
  assert.equal(tr.items[2]!.kind, 'post-accepted');
  const bad = (await (await app.request('/api/runs/0/tasks/task3_1')).json()) as { items: Array<{ kind: string; payload?: string | null }> };
  assert.equal(bad.items[1]!.payload, null);
  assert.equal(bad.items[2]!.kind, 'post-rejected');
});

test('viewer serves only its page and API: no path traversal, binds 127.0.0.1', async () => {
  const v = await startViewer([baseDir], { port: 0 });
  try {
    assert.match(v.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const probes = [
      '/../../../../etc/passwd',
      '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/..%2f..%2f..%2fetc%2fpasswd',
      '//etc/passwd',
      '/etc/passwd',
      `/${join(baseDir, 'runs.jsonl')}`,
      `/${encodeURIComponent(join(baseDir, 'summary.json'))}`,
      '/summary.json',
      '/runs.jsonl',
      '/api/runs/0/tasks/..%2f..%2fsummary.json',
      '/api/runs/0/tasks/%2e%2e',
      '/api/runs/%2e%2e/tasks/task1_1',
      '/api/runs/..%2f/tasks/task1_1',
      '/api/runs/0/../../etc/passwd',
      '/api/runs/1/tasks/task1_1',
      'http://127.0.0.1/etc/passwd',
      '/api/../../etc/passwd',
      '/static/..%5c..%5cetc%5cpasswd',
    ];
    for (const p of probes) {
      const r = await raw(v.port, p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: status ${r.status}`);
      assert.doesNotMatch(r.body, /root:|"manifest"|"output"|Here is the response/, p);
    }
    const ok = await raw(v.port, '/api/runs/0/tasks/task1_1');
    assert.equal(ok.status, 200);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect({ port: v.port, host: '::1' }, () => resolve(s.end()));
        s.on('error', reject);
      }),
    );
  } finally {
    await v.close();
  }
});

test('ehrgym view serves the runs on 127.0.0.1 and stops cleanly on SIGTERM', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'view', baseDir, ftDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /ehrgym viewer: (http:\/\/127\.0\.0\.1:\d+\/) \(base, finetuned\); Ctrl-C to stop/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const runs = (await (await fetch(`${url}api/runs`)).json()) as Array<{ label: string }>;
    assert.deepEqual(
      runs.map((r) => r.label),
      ['base', 'finetuned'],
    );
    const page = await (await fetch(url)).text();
    assert.match(page, /<title>ehrgym viewer<\/title>/);
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  }
});

/** The page's navigation script, run as the browser runs it (the same text, in a fresh context). */
const nav = runInNewContext(`${VIEWER_NAV_JS}; ehrNav`) as {
  neighbour(ids: string[], current: string | null, step: number): string | null;
  findTask(ids: string[], q: string): string | null;
  jumpWhileTyping(ids: string[], q: string): string | null;
  isTypingTarget(el: unknown): boolean;
  keyAction(key: string, mods: boolean, typing: boolean): string | null;
};

test('viewer navigation: next/previous task, search by id, keys ignored while typing', () => {
  assert.ok(VIEWER_PAGE.includes(VIEWER_NAV_JS), 'the page embeds the tested script');
  const ids = ['task1_1', 'task1_2', 'task5_2', 'task5_21', 'task10_1'];
  assert.equal(nav.neighbour(ids, 'task1_2', 1), 'task5_2');
  assert.equal(nav.neighbour(ids, 'task1_2', -1), 'task1_1');
  assert.equal(nav.neighbour(ids, 'task10_1', 1), null);
  assert.equal(nav.neighbour(ids, 'task1_1', -1), null);
  assert.equal(nav.neighbour(ids, null, 1), 'task1_1'); // from the grid: first task
  assert.equal(nav.neighbour(ids, 'task9_9', -1), 'task10_1'); // current filtered out: last
  assert.equal(nav.neighbour([], 'task1_1', 1), null);

  assert.equal(nav.findTask(ids, 'task5_21'), 'task5_21');
  assert.equal(nav.findTask(ids, ' TASK5_2 '), 'task5_2'); // exact beats prefix
  assert.equal(nav.findTask(ids, 'task10'), 'task10_1'); // prefix
  assert.equal(nav.findTask(ids, 'task7'), null);
  assert.equal(nav.findTask(ids, ''), null);
  assert.equal(nav.jumpWhileTyping(ids, 'task5_21'), 'task5_21');
  assert.equal(nav.jumpWhileTyping(ids, 'task5_2'), null); // task5_21 may still be coming
  assert.equal(nav.jumpWhileTyping(ids, 'task5_'), null);
  assert.equal(nav.jumpWhileTyping(ids, 'task1_1'), 'task1_1');

  assert.equal(nav.keyAction('j', false, false), 'next');
  assert.equal(nav.keyAction('ArrowRight', false, false), 'next');
  assert.equal(nav.keyAction('k', false, false), 'prev');
  assert.equal(nav.keyAction('ArrowLeft', false, false), 'prev');
  assert.equal(nav.keyAction('/', false, false), 'search');
  assert.equal(nav.keyAction('j', false, true), null); // typing in an input
  assert.equal(nav.keyAction('ArrowLeft', true, false), null); // with a modifier (browser back etc.)
  assert.equal(nav.keyAction('x', false, false), null);
  for (const tagName of ['INPUT', 'textarea', 'SELECT']) assert.equal(nav.isTypingTarget({ tagName }), true, tagName);
  assert.equal(nav.isTypingTarget({ tagName: 'DIV', isContentEditable: true }), true);
  assert.equal(nav.isTypingTarget({ tagName: 'A' }), false);
  assert.equal(nav.isTypingTarget(null), false);
});
