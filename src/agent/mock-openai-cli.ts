/**
 * The mock OpenAI-compatible server as its own process, like a real model server (it then uses its own core instead
 * of competing with the harness for the harness's):
 *
 *   node --import tsx src/agent/mock-openai-cli.ts --replies replies.json [--latency 100] [--model mock] [--port 0]
 *   node --import tsx src/agent/mock-openai-cli.ts --mode html|not-chat|empty|reasoning-only [--port 0]
 *
 * `--mode` answers every chat request like a broken or misconfigured endpoint instead: an HTML page with 200, JSON
 * that is not a chat completion, empty content, or content null with the text in `reasoning_content`.
 *
 * `--replies` is a JSON object mapping a conversation's first user message (the task prompt) to the assistant
 * replies by turn; a conversation it does not know, or a turn past the end, is answered with an HTTP 500 naming the
 * problem, so a mismatch cannot pass silently. The process prints one line
 * `{"url": …, "port": …}` on stdout once it listens. When started with an IPC channel (`forkMockOpenAI`), it also
 * answers `{type: 'stats'}` messages with its counters and exits on `{type: 'close'}` or when the parent goes away.
 */
import { readFileSync } from 'node:fs';
import { startMockOpenAI, type MockOpenAIServer, type MockScript } from './mock-openai.js';
import { repliesScript, type RecordedReplies } from './mock-openai-process.js';

/** The broken-endpoint modes of `--mode`. */
const MOCK_MODES: Readonly<Record<string, MockScript>> = {
  html: () => ({ fault: 'html' }),
  'not-chat': () => ({ fault: 'not-chat' }),
  empty: () => '',
  'reasoning-only': () => ({ content: null, reasoning: 'Okay, the user wants the latest magnesium level, so I should first' }),
};

function parseArgs(argv: string[]): { replies: string; mode: string; latency: number; model: string; port: number } {
  const out = { replies: '', mode: '', latency: 0, model: 'mock-model', port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--replies') out.replies = v;
    else if (k === '--mode') {
      if (!(v in MOCK_MODES)) throw new Error(`--mode must be one of ${Object.keys(MOCK_MODES).join(', ')}, got "${v}"`);
      out.mode = v;
    } else if (k === '--model') out.model = v;
    else if (k === '--latency' || k === '--port') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${k} needs a non-negative integer, got "${v}"`);
      if (k === '--latency') out.latency = n;
      else out.port = n;
    } else throw new Error(`unknown option ${k}`);
    i++;
  }
  if (!out.replies && !out.mode) throw new Error('--replies FILE or --mode is required');
  return out;
}

async function main(): Promise<void> {
  let args;
  let script: MockScript;
  try {
    args = parseArgs(process.argv.slice(2));
    if (args.mode) script = MOCK_MODES[args.mode];
    else {
      try {
        script = repliesScript(JSON.parse(readFileSync(args.replies, 'utf8')) as RecordedReplies);
      } catch (err) {
        throw new Error(`--replies ${args.replies}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } catch (err) {
    process.stderr.write(`mock-openai: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const server: MockOpenAIServer = await startMockOpenAI({
    script,
    latencyMs: args.latency,
    model: args.model,
    port: args.port,
    keepBodies: false,
  });
  process.stdout.write(JSON.stringify({ url: server.url, port: server.port }) + '\n');
  if (process.send) {
    const send = process.send.bind(process);
    process.on('message', (msg: { type?: string }) => {
      if (msg?.type === 'stats') {
        const s = server.stats;
        send({
          type: 'stats',
          stats: {
            requests: s.requests,
            completions: s.completions,
            faults: s.faults,
            promptTokens: s.promptTokens,
            completionTokens: s.completionTokens,
            maxInFlight: s.maxInFlight,
          },
        });
      } else if (msg?.type === 'close') {
        void server.close().then(() => process.exit(0));
      }
    });
    // the parent went away: do not linger
    process.on('disconnect', () => void server.close().then(() => process.exit(0)));
    send({ type: 'ready', url: server.url, port: server.port });
  }
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
