/**
 * The shipped replica data (data/medagentbench/patients.ndjson, anchors.json) still follows from the reference
 * fixtures in test/fixtures/medagentbench/ (recorded official-server snapshot and derived reference answers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

test('scripts/derive-anchors.ts --check: the shipped patients and anchors equal a fresh derivation', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/derive-anchors.ts', '--check']);
  assert.equal(stdout, 'derive-anchors: shipped files are up to date\n');
});
