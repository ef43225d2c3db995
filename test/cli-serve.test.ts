/**
 * `ehrgym serve` as a newcomer sees it: loading progress on stderr (a live counter on a terminal, one line otherwise), then the base URL and the next steps (a curl
 * line that works, and the eval command pointed at the served replica).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnServe } from './helpers/serve.js';

/** Ready once the next steps are printed: the curl line, and the eval line for the replica. */
async function serve(args: string[]): Promise<{ stdout: string; stderr: string; stop(): Promise<number | null> }> {
  const s = await spawnServe(args, (stdout) => /^try: .*\n/m.test(stdout) && (args.includes('synthetic') || /^eval: .*\n/m.test(stdout)));
  return { stdout: s.stdout, stderr: s.stderr, stop: async () => (await s.stop('SIGINT')).code };
}

test('serve the replica: the load time on stderr, then a working curl line and the eval command', async () => {
  const s = await serve(['--port', '0']);
  try {
    assert.match(s.stderr, /^serve: loaded world medagentbench \(500 patients, ~587k resources\) in \d+\.\d s\n$/);
    const url = /at (http:\/\/127\.0\.0\.1:\d+\/fhir\/)\n/.exec(s.stdout)![1];
    const curl = /^try: {2}curl '([^']+)'$/m.exec(s.stdout)![1];
    assert.equal(curl, `${url}Patient?identifier=S6426560`); // the first patient in server order
    const res = await fetch(curl);
    assert.equal(res.status, 200);
    const bundle = (await res.json()) as { total: number; entry: Array<{ resource: { id: string } }> };
    assert.equal(bundle.total, 1);
    assert.match(s.stdout, new RegExp(`^eval: npx ehrgym eval --agent oracle --fhir-url ${url.replace(/[./]/g, '\\$&')} --out runs/oracle-served$`, 'm'));
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('serve a synthetic cohort: the cohort size is named in the load line; no eval line (no task set over it)', async () => {
  const s = await serve(['--world', 'synthetic', '--seed', '3', '--patients', '5', '--port', '0']);
  try {
    assert.match(s.stderr, /^serve: loaded world synthetic \(5 patients\) in \d+\.\d s\n$/);
    assert.match(s.stdout, /^try: {2}curl 'http:\/\/127\.0\.0\.1:\d+\/fhir\/Patient\?identifier=S9\d{6}'$/m);
    assert.doesNotMatch(s.stdout, /^eval: /m);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
