import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { PROMPT_TEMPLATE, renderPrompt, functionsText, promptTemplateSha256 } from '../src/agent/prompt.js';
import type { TaskCase } from '../src/tasks/types.js';

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const tasks: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
const byId = (id: string) => tasks.find((t) => t.id === id)!;
const funcsRaw = readFileSync('data/medagentbench/funcs_v1.json', 'utf8');

// The template exactly as the official source defines it (`MedAgentBench_prompt`; independent of src/agent/prompt.ts;
// provenance in test/fixtures/medagentbench/README.md).
const officialTemplate = readFileSync('test/fixtures/medagentbench/prompt_template.txt', 'utf8');

// Built by plain concatenation, the way Python's str.format would fill it.
function expected(t: TaskCase): string {
  const parts = officialTemplate.split(/(\{api_base\}|\{functions\}|\{context\}|\{question\})/);
  const values: Record<string, string> = {
    '{api_base}': 'http://localhost:8080/fhir/',
    '{functions}': funcsRaw,
    '{context}': t.context,
    '{question}': t.instruction,
  };
  return parts.map((p) => values[p] ?? p).join('');
}

test('template equals the official text', () => {
  assert.equal(PROMPT_TEMPLATE, officialTemplate);
  // sha256 of the template as extracted from the official source with Python.
  assert.equal(promptTemplateSha256(), '6d006952a997f7b7f7396c82ad05995990cffa42e99240bdeff209b87ccad154');
});

test('functions are the exact bytes of funcs_v1.json', () => {
  assert.equal(functionsText(), funcsRaw);
  assert.equal(Buffer.byteLength(functionsText()), 12571);
});

test('task1_1 prompt: byte-identical, trailing space after Context:', () => {
  const p = renderPrompt(byId('task1_1'));
  assert.equal(p, expected(byId('task1_1')));
  // hashes computed with Python str.format over the official files
  assert.equal(sha(p), '37148604a0bff84b5e865dda73af212cea1e1d4175ce5fe552f57bb0890d2708');
  assert.ok(p.includes('\nContext: \nQuestion: What\u2019s the MRN'));
  assert.ok(p.includes('"name": "GET {api_base}/Condition"'), 'no recursive substitution inside functions');
  assert.ok(p.includes('Note that you should use http://localhost:8080/fhir/ as the api_base.'));
  assert.ok(!p.endsWith('\n'));
});

test('task5_1 prompt: blank line before Question', () => {
  const p = renderPrompt(byId('task5_1'));
  assert.equal(p, expected(byId('task5_1')));
  assert.equal(sha(p), '7cc6c40ed947aa9279020f727e59a01f710eaf3c1c70a6ceceb78678b217d02f');
  assert.ok(p.includes('IV: 4 g over 4 hours.\n\nQuestion: Check patient S6315806'));
  assert.ok(p.endsWith("don't order anything.\n"));
});

test('task9_3 prompt and api_base override', () => {
  assert.equal(sha(renderPrompt(byId('task9_3'))), 'dc48d3c49cbef18924ee9f557be7a00748b603ed5692183495462939514ef683');
  const p = renderPrompt(byId('task9_3'), { apiBase: 'http://ehr.test/fhir/' });
  assert.ok(p.includes('use http://ehr.test/fhir/ as the api_base'));
  // a context holding a placeholder is not re-substituted
  const q = renderPrompt({ context: '{api_base}', instruction: '{functions}' });
  assert.ok(q.endsWith('Context: {api_base}\nQuestion: {functions}'));
});
