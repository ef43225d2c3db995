/** Run files in AgentBench's bytes: compared with what CPython's json.dumps wrote for the same outputs (fixture). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorLine, overallText, pyDumpsIndented, pyHistoryItemParts, runsLineParts } from '../src/eval/agentbench-format.js';
import { agentBenchOverall } from '../src/eval/score.js';
import { contentAsciiJsonBytes, contentJsonBytes } from '../src/agent/history-json.js';
import { PyFloat, asciiJsonString } from '../src/tasks/pysem.js';
import type { TaskOutput } from '../src/tasks/types.js';

const dir = 'test/fixtures/agentbench-format';
const inp = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')) as {
  outputs: TaskOutput[];
  correct: boolean[];
  times: Array<{ timestamp: number; str: string }>;
  errors: Array<Record<string, unknown>>;
};
const joined = (parts: Array<string | Buffer>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))).toString('utf8');

test('runs.jsonl and error.jsonl lines are json.dumps of the record, byte for byte', () => {
  const want = readFileSync(join(dir, 'runs.jsonl'), 'utf8').split('\n').filter(Boolean);
  assert.equal(want.length, inp.outputs.length);
  inp.outputs.forEach((o, i) => assert.equal(joined(runsLineParts(o.index as number, o, inp.times[i])), want[i], `line ${i}`));
  const errs = readFileSync(join(dir, 'error.jsonl'), 'utf8').split('\n').filter(Boolean);
  inp.errors.forEach((e, i) => assert.equal(errorLine(e), errs[i]));
});

test('overall.json is json.dumps(overall, indent=4, ensure_ascii=False), byte for byte', () => {
  const o = agentBenchOverall(inp.outputs, (x) => inp.correct[x.index as number]);
  assert.equal(overallText(o), readFileSync(join(dir, 'overall.json'), 'utf8'));
  // a run where every episode has the same status still prints floats (1.0, 0.0) and an integral average as 2.0
  const same = agentBenchOverall(
    [0, 1].map((index) => ({
      index,
      status: 'completed',
      result: '[]',
      history: [
        { role: 'user' as const, content: 'p' },
        { role: 'agent' as const, content: 'FINISH([])' },
      ],
    })),
    () => true,
  );
  const t = overallText(same);
  assert.match(t, /"completed": 1\.0,\n/);
  assert.match(t, /"running": 0\.0,\n/);
  assert.match(t, /"average_history_length": 2\.0,\n/);
  assert.match(t, /"max_history_length": 2,\n/);
  assert.match(t, /"success rate": 1\.0,\n/);
  assert.ok(!t.endsWith('\n'));
  assert.deepEqual(JSON.parse(t), JSON.parse(JSON.stringify(same)));
  const empty = overallText(agentBenchOverall([], () => false));
  assert.match(empty, /"raw_results": \[\]\n {4}\}\n\}$/);
});

test('the Python forms: ASCII escaping, indentation, ints and floats', () => {
  for (const s of ['plain', 'é’😀中', 'del\u007f', 'ctl\u0001\n\t"\\', '\ud800 lone', '']) {
    const a = asciiJsonString(s);
    assert.match(a, /^[\x20-\x7e]*$/, JSON.stringify(s));
    assert.equal(JSON.parse(a), s);
  }
  assert.equal(asciiJsonString('é😀'), '"\\u00e9\\ud83d\\ude00"');
  // a content with only ASCII reuses the compact bytes; anything else is escaped once and cached
  const ascii = { role: 'user' as const, content: 'a "b"\n' };
  assert.equal(contentAsciiJsonBytes(ascii), contentJsonBytes(ascii));
  const wide = { role: 'user' as const, content: 'é' };
  assert.equal(contentAsciiJsonBytes(wide).toString(), '"\\u00e9"');
  assert.equal(contentAsciiJsonBytes(wide), contentAsciiJsonBytes(wide));
  assert.equal(joined(pyHistoryItemParts(wide)), '{"role": "user", "content": "\\u00e9"}');
  assert.equal(
    pyDumpsIndented({ a: [1, new PyFloat(2), 0.5, {}, []], b: null }, 0),
    '{\n    "a": [\n        1,\n        2.0,\n        0.5,\n        {},\n        []\n    ],\n    "b": null\n}',
  );
});
