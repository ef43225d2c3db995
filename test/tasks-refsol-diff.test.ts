/**
 * Differential test against the official grader: 3,000 seeded adversarial trajectories (test/fixtures/tasks-refsol)
 * were graded by the unmodified official refsol.py; every verdict of our port, and the type of every exception that
 * escapes a grader, must be the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FhirTransport } from '../src/fhir/types.js';
import { getFamily } from '../src/tasks/registry.js';
import type { TaskOutput } from '../src/tasks/types.js';
import { buildRefsolCases, casesSha256 } from './fixtures/tasks-refsol/make-cases.js';

const recorded = JSON.parse(readFileSync('test/fixtures/tasks-refsol/verdicts.json', 'utf8')) as { cases_sha256: string; verdicts: string };
const CODES: Record<string, string> = { KeyError: 'K', TypeError: 'Y', ValueError: 'V', IndexError: 'I', AttributeError: 'A' };

test('3,000 adversarial trajectories: same verdicts and escaping exceptions as the official refsol.py', async () => {
  const cases = buildRefsolCases();
  assert.equal(casesSha256(cases), recorded.cases_sha256, 'the cases changed: re-record verdicts.json with run_refsol.py');
  assert.equal(recorded.verdicts.length, cases.length);
  const mismatches: string[] = [];
  const tally: Record<string, number> = {};
  for (const [i, c] of cases.entries()) {
    const fhir: FhirTransport = async (req) =>
      c.responses[req.url] ?? { status: 404, contentType: 'application/fhir+json;charset=utf-8', body: '{"resourceType": "OperationOutcome"}' };
    const g = await getFamily(c.task.id).grade(c.task, c.output as TaskOutput, { apiBase: c.apiBase, fhir });
    const ours = g.exception ? (CODES[g.exception.split(':')[0]] ?? 'O') : g.correct ? 'T' : 'F';
    const official = recorded.verdicts[i];
    tally[official] = (tally[official] ?? 0) + 1;
    if (ours !== official) mismatches.push(`${c.task.id} (#${i}): ours ${ours} ${g.exception ?? ''}, official ${official}`);
  }
  assert.deepEqual(mismatches, []);
  // the cases exercise passes, plain failures and every kind of escaping exception
  assert.ok(tally.T > 300 && tally.F > 1000 && tally.K > 50 && tally.Y > 50 && tally.V > 20 && tally.I > 20, JSON.stringify(tally));
});
