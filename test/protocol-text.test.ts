import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEpisode } from '../src/agent/loop.js';
import type { Agent } from '../src/agent/types.js';
import type { FhirTransport } from '../src/fhir/types.js';
import { steps, parseAction as reportParse } from '../src/report/history.js';
import {
  GET_OK_SUFFIX,
  POST_ACCEPTED,
  POST_ACCEPTED_MARK,
  cleanReply,
  formatAction,
  getOkBody,
  getOkReply,
  livePostAcceptedReply,
  parseAction,
} from '../src/protocol/text.js';
import { checkHasPost, extractPosts } from '../src/tasks/refsol.js';

const BASE = 'http://localhost:8080/fhir/';
const fhir: FhirTransport = async () => ({ status: 200, contentType: 'application/json', body: '{"resourceType":"Bundle","total":0}' });

/** Run the official loop on a fixed list of replies; the history it records and how the episode ended. */
async function harness(replies: string[]) {
  let i = 0;
  const agent: Agent = { name: 'fixed', config: {}, act: async () => ({ content: replies[i++] ?? 'FINISH([])' }) };
  const r = await runEpisode({ index: 0, task: { id: 'task1_1', instruction: 'q', context: '' }, agent, fhir, apiBase: BASE });
  return r.output;
}

// Replies whose surrounding whitespace JavaScript's trim() and Python's str.strip() read differently:
// U+001C..U+001F and U+0085 are Python whitespace only; U+FEFF is JavaScript whitespace only.
const EDGE: Array<{ reply: string; kind: string; result?: string }> = [
  { reply: `\u0085GET ${BASE}Patient?identifier=S1`, kind: 'GET' },
  { reply: `\u001cGET ${BASE}Patient?identifier=S1\u001f`, kind: 'GET' },
  { reply: 'FINISH(["S1"])\u001e', kind: 'FINISH', result: '["S1"]' },
  { reply: '\u001dFINISH([1])\u0085', kind: 'FINISH', result: '[1]' },
  { reply: '\ufeffFINISH([1])', kind: 'invalid' },
  { reply: 'FINISH([1])\ufeff', kind: 'FINISH', result: '[1])' },
  // Python's r[...:-1] drops the last code point, not the last UTF-16 unit
  { reply: 'FINISH(["x"]\u{1F600}', kind: 'FINISH', result: '["x"]' },
];

test('the report classifies replies as the harness does, with Python strip() (not JS trim())', async () => {
  for (const { reply, kind, result } of EDGE) {
    const out = await harness([reply, 'FINISH(["end"])']);
    const harnessKind =
      out.status === 'agent invalid action' ? 'invalid' : out.history!.length > 2 && out.history![2]!.content.startsWith('Here is') ? 'GET' : 'FINISH';
    const a = reportParse(reply);
    assert.equal(a.kind, harnessKind, JSON.stringify(reply));
    assert.equal(a.kind, kind, JSON.stringify(reply));
    if (kind === 'FINISH') {
      assert.equal(out.status, 'completed');
      assert.equal(out.result, result);
      assert.equal(a.result, result);
    }
    // steps() pairs the GET with the harness's reply and reads its body
    const st = steps(out.history)[0]!;
    assert.equal(st.action.kind, kind);
    if (kind === 'GET') {
      assert.equal(st.action.url, `${BASE}Patient?identifier=S1`);
      assert.equal(st.getBody, "{'resourceType': 'Bundle', 'total': 0}");
    }
  }
});

test('these replies differ between trim() and strip(), so the old report rules misread them', () => {
  for (const { reply } of EDGE.slice(0, 5)) assert.notEqual(reply.trim(), cleanReply(reply));
});

test('formatAction and parseAction are inverse on the actions the expert solvers write', () => {
  const actions = [
    { kind: 'get', url: `${BASE}Observation?patient=S1&code=GLU&_count=5000` },
    { kind: 'post', url: `${BASE}Observation`, body: '{"resourceType": "Observation", "note": "a\\nb"}' },
    { kind: 'finish', answer: '[1.5, "S1"]' },
  ] as const;
  for (const a of actions) assert.deepEqual(parseAction(formatAction(a)), a);
  assert.deepEqual(parseAction('```tool_code\nPOST  http://x/Observation \n{"a":1}\n```'), { kind: 'post', url: 'http://x/Observation', body: '{"a":1}' });
  assert.deepEqual(parseAction('finish([1])'), { kind: 'invalid' });
});

test('reply strings compose as the official harness writes them; graders read them', () => {
  assert.equal(
    POST_ACCEPTED,
    'POST request accepted and executed successfully. Please call FINISH if you have got answers for all the questions and finished all the requested tasks',
  );
  assert.ok(POST_ACCEPTED.startsWith(POST_ACCEPTED_MARK) && livePostAcceptedReply('Observation/1').includes(POST_ACCEPTED_MARK));
  assert.equal(getOkBody(getOkReply('{"a": 1}')), '{"a": 1}');
  assert.equal(getOkReply('x').endsWith(GET_OK_SUFFIX), true);
  assert.equal(getOkBody('Error in sending the GET request: boom'), undefined);
  const history = [
    { role: 'user', content: 'prompt' },
    { role: 'agent', content: formatAction({ kind: 'post', url: `${BASE}Observation`, body: '{"a": 1}' }) },
    { role: 'user', content: POST_ACCEPTED },
    { role: 'agent', content: formatAction({ kind: 'finish', answer: '[]' }) },
  ];
  assert.equal(checkHasPost(history), true);
  assert.deepEqual(extractPosts(history), [{ url: `${BASE}Observation`, payload: { a: 1 }, index: 1 }]);
});
