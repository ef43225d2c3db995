import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEpisode, sendGet, type EpisodeOptions } from '../src/agent/loop.js';
import { cleanReply, parseAction, pyStrip, prepareGetUrl, requoteUri } from '../src/agent/parser.js';
import { routedTransport } from '../src/agent/fhir-route.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import type { Agent } from '../src/agent/types.js';
import type { FhirHttpRequest, FhirHttpResponse } from '../src/fhir/types.js';
import type { TaskCase } from '../src/tasks/types.js';

const task: TaskCase = { id: 'task7_1', instruction: 'What is the most recent CBG of the patient S2823623?', context: 'ctx', eval_MRN: 'S2823623' };
const OK = '. Please call FINISH if you have got answers for all the questions and finished all the requested tasks';

function fakeFhir(log: FhirHttpRequest[] = []) {
  return async (req: FhirHttpRequest): Promise<FhirHttpResponse> => {
    log.push(req);
    if (req.url.includes('bad')) return { status: 400, contentType: 'application/fhir+json;charset=utf-8', body: '{"resourceType":"OperationOutcome"}' };
    if (req.url.includes('boom')) return { status: 500, contentType: 'text/plain', body: 'x' };
    if (req.url.includes('plainjson')) return { status: 200, contentType: 'application/json', body: '{"a": 1.5, "b": [true, null, "it\'s"]}' };
    if (req.method === 'POST')
      return {
        status: 201,
        contentType: 'application/fhir+json',
        body: '{}',
        headers: { location: 'http://localhost:8080/fhir/Observation/786600/_history/1' },
      };
    return { status: 200, contentType: 'application/fhir+json;charset=utf-8', body: '{\n  "resourceType": "Bundle"\n}' };
  };
}

function scripted(replies: Array<string | { contextLimit: true }>): Agent {
  return {
    name: 'scripted',
    config: {},
    async act(history) {
      const turn = history.filter((h) => h.role === 'agent').length;
      const r = replies[turn];
      if (r === undefined) throw new Error('script exhausted');
      return typeof r === 'string' ? { content: r } : { content: '', contextLimit: true };
    },
  };
}

const run = (replies: Array<string | { contextLimit: true }>, extra: Partial<EpisodeOptions> = {}, log?: FhirHttpRequest[]) =>
  runEpisode({ index: 3, task, agent: scripted(replies), fhir: fakeFhir(log), prompt: 'PROMPT', ...extra });

test('python strip semantics differ from trim()', () => {
  assert.equal(pyStrip('\x1c\x85 GET x \u3000'), 'GET x');
  assert.equal(pyStrip('\ufeffGET x'), '\ufeffGET x'); // BOM is not whitespace for Python
  assert.equal(cleanReply('  ```tool_code\nGET http://a/b?c=d\n```  '), 'GET http://a/b?c=d');
  assert.equal(cleanReply('```json\nFINISH([1])\n```'), 'json\nFINISH([1])');
  assert.deepEqual(parseAction('GET   http://localhost:8080/fhir/Patient/S1  '), { kind: 'get', url: 'http://localhost:8080/fhir/Patient/S1&_format=json' });
  assert.deepEqual(parseAction('FINISH(["😀"])'), { kind: 'finish', result: '["😀"]' });
  assert.deepEqual(parseAction('FINISH([1]'), { kind: 'finish', result: '[1' });
  assert.deepEqual(parseAction('finish([1])'), { kind: 'invalid' });
  assert.deepEqual(parseAction('POST http://x/Observation\n{"a":1}\n'), { kind: 'post', firstLine: 'POST http://x/Observation', body: '{"a":1}' });
});

test('requests URL preparation: requoting and error texts', () => {
  assert.equal(requoteUri('http://h/Patient?name=Peter Stafford&x=%41%2F'), 'http://h/Patient?name=Peter%20Stafford&x=A%2F');
  assert.equal(requoteUri('http://h/p?d=ge2023-11-12T10:15:00+00:00'), 'http://h/p?d=ge2023-11-12T10:15:00+00:00');
  assert.equal(requoteUri('http://h/p?q=caf\u00e9'), 'http://h/p?q=caf%C3%A9');
  assert.deepEqual(prepareGetUrl('Patient?name=x&_format=json'), {
    ok: false,
    error: "Invalid URL 'Patient?name=x&_format=json': No scheme supplied. Perhaps you meant https://Patient?name=x&_format=json?",
  });
  assert.deepEqual(prepareGetUrl('{api_base}/Patient&_format=json'), {
    ok: false,
    error: "Invalid URL '{api_base}/Patient&_format=json': No scheme supplied. Perhaps you meant https://{api_base}/Patient&_format=json?",
  });
  assert.deepEqual(prepareGetUrl('fhir:Patient&_format=json'), { ok: false, error: "No connection adapters were found for 'fhir:Patient&_format=json'" });
});

test('GET: suffix appended blindly, body passed through, reply byte-exact', async () => {
  const log: FhirHttpRequest[] = [];
  const r = await run(['GET http://localhost:8080/fhir/Observation?patient=S2823623&code=GLU', 'FINISH([123.0])'], {}, log);
  assert.equal(log[0].url, 'http://localhost:8080/fhir/Observation?patient=S2823623&code=GLU&_format=json');
  assert.equal(r.output.status, 'completed');
  assert.equal(r.output.result, '[123.0]');
  assert.equal(r.rounds, 2);
  assert.deepEqual(r.output.history, [
    { role: 'user', content: 'PROMPT' },
    { role: 'agent', content: 'GET http://localhost:8080/fhir/Observation?patient=S2823623&code=GLU' },
    { role: 'user', content: 'Here is the response from the GET request:\n{\n  "resourceType": "Bundle"\n}' + OK },
    { role: 'agent', content: 'FINISH([123.0])' },
  ]);
});

test('GET errors: requests exception texts', async () => {
  const fhir = fakeFhir();
  assert.equal(
    await sendGet(fhir, 'http://localhost:8080/fhir/Observation?bad=1&_format=json'),
    'Error in sending the GET request: 400 Client Error: Bad Request for url: http://localhost:8080/fhir/Observation?bad=1&_format=json',
  );
  assert.equal(
    await sendGet(fhir, 'http://localhost:8080/fhir/boom&_format=json'),
    'Error in sending the GET request: 500 Server Error: Internal Server Error for url: http://localhost:8080/fhir/boom&_format=json',
  );
  // exactly application/json: the agent sees the Python repr of the parsed body
  assert.equal(
    await sendGet(fhir, 'http://localhost:8080/fhir/plainjson&_format=json'),
    `Here is the response from the GET request:\n{'a': 1.5, 'b': [True, None, "it's"]}${OK}`,
  );
  // other hosts are never contacted; they fail like a refused connection
  const routed = routedTransport({ apiBase: 'http://localhost:8080/fhir/', targetBase: 'http://127.0.0.1:9/fhir/', send: fhir });
  const t = await sendGet(routed, 'http://example.org/fhir/Patient&_format=json');
  assert.match(
    t,
    /^Error in sending the GET request: HTTPConnectionPool\(host='example.org', port=80\): Max retries exceeded with url: \/fhir\/Patient&_format=json/,
  );
});

test('POST official: not sent; invalid JSON; NaN accepted like Python', async () => {
  const log: FhirHttpRequest[] = [];
  const r = await run(
    [
      'POST http://localhost:8080/fhir/Observation\n{"a": NaN}',
      'POST http://localhost:8080/fhir/Observation\n{a: 1}',
      '```\nPOST http://localhost:8080/fhir/Observation\n{"b": 2}\n```',
      'FINISH([])',
    ],
    {},
    log,
  );
  assert.equal(log.length, 0);
  const replies = r.output.history!.filter((h, i) => h.role === 'user' && i > 0).map((h) => h.content);
  assert.deepEqual(replies, [
    'POST request accepted and executed successfully' + OK,
    'Invalid POST request',
    'POST request accepted and executed successfully' + OK,
  ]);
  // the raw (fenced) reply is what the history keeps
  assert.equal(r.output.history![5].content, '```\nPOST http://localhost:8080/fhir/Observation\n{"b": 2}\n```');
  assert.equal(r.output.result, '[]');
});

test('POST live: executed in the session, reply carries the location', async () => {
  const log: FhirHttpRequest[] = [];
  const r = await run(['POST http://localhost:8080/fhir/Observation\n{"resourceType": "Observation"}', 'FINISH([])'], { postMode: 'live' }, log);
  assert.equal(log.length, 1);
  assert.equal(log[0].method, 'POST');
  assert.equal(log[0].url, 'http://localhost:8080/fhir/Observation');
  assert.equal(log[0].body, '{"resourceType": "Observation"}');
  assert.equal(
    r.output.history![2].content,
    'POST request accepted and executed successfully. Location: http://localhost:8080/fhir/Observation/786600/_history/1' + OK,
  );
});

test('statuses: invalid action, limit, context limit, agent failure', async () => {
  const prose = await run(['Sure, let me look that up.']);
  assert.equal(prose.output.status, 'agent invalid action');
  assert.equal(prose.output.result, null);
  assert.equal(prose.output.history!.length, 2);
  const think = await run(['<think>hmm</think>\nFINISH([1])']);
  assert.equal(think.output.status, 'agent invalid action');
  const gets = Array.from({ length: 8 }, () => 'GET http://localhost:8080/fhir/Patient?x=1');
  const limit = await run(gets);
  assert.equal(limit.output.status, 'task limit reached');
  assert.equal(limit.output.history!.length, 17);
  assert.equal(limit.rounds, 8);
  const eighth = await run([...gets.slice(0, 7), 'FINISH(["x"])']);
  assert.equal(eighth.output.status, 'completed');
  const ctx = await run(['GET http://localhost:8080/fhir/Patient?x=1', { contextLimit: true }]);
  assert.equal(ctx.output.status, 'agent context limit');
  assert.equal(ctx.output.history!.length, 3);
  assert.equal(ctx.output.result, null);
  const failed = await runEpisode({
    index: 0,
    task,
    agent: new PolicyAgent('x', () => {
      throw new Error('down');
    }),
    fhir: fakeFhir(),
    prompt: 'P',
  });
  assert.equal(failed.agentError, 'down');
});

test('task error: an exception inside the loop', async () => {
  const r = await runEpisode({
    index: 0,
    task,
    agent: scripted(['GET http://localhost:8080/fhir/Patient?x=1']),
    fhir: async () => null as unknown as FhirHttpResponse,
    prompt: 'P',
  });
  assert.equal(r.output.status, 'task error');
  assert.match(String((r.output.result as { error: string }).error), /null/);
  assert.equal(r.output.history!.length, 2);
});
