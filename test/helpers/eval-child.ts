/**
 * Child process for the kill -9 resume test: runs `runEval` with an OpenAI-compatible agent against a mock server
 * given on the command line: eval-child.ts <out> <baseUrl> <limit>
 */
import { runEval } from '../../src/eval/run.js';
import { createAgent } from '../../src/agent/create.js';
import { openTaskSet, openBackend, officialGrader } from '../../src/eval/setup.js';

const [out, baseUrl, limit] = process.argv.slice(2);
const apiBase = 'http://localhost:8080/fhir/';
const backend = await openBackend({ apiBase });
process.stdout.write('ready\n');
await runEval({
  out,
  taskSet: openTaskSet('medagentbench-v2'),
  agent: createAgent('openai:mock-expert', { baseUrls: [baseUrl], env: {} }),
  backend,
  grade: officialGrader,
  families: ['task2'],
  limit: Number(limit),
  concurrency: 4,
  resume: true,
  progress: false,
});
process.stdout.write('done\n');
