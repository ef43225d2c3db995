/**
 * The mock OpenAI server in a child process (`src/agent/mock-openai-cli.ts`), answering from recorded replies.
 * Benchmarks use it so the model side runs on another core, as a real model server does; tests that need faults or
 * a script function keep the in-process `startMockOpenAI`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MockScript, MockStats, MockToolCall } from './mock-openai.js';

/**
 * Replies by first user message (the task prompt), then by turn (assistant messages already in the conversation): a
 * text reply, or (tools protocol) the reply's text and tool calls.
 */
export type RecordedReplies = Record<string, Array<string | { content: string | null; toolCalls: MockToolCall[] }>>;

/** A script answering from recorded replies; an unknown prompt or turn throws (the server answers 500). */
export function repliesScript(replies: RecordedReplies): MockScript {
  const table = new Map(Object.entries(replies));
  return (req) => {
    const turns = table.get(req.prompt);
    if (!turns) throw new Error('mock: no recorded replies for this prompt');
    if (req.turn >= turns.length) throw new Error(`mock: no recorded reply for turn ${req.turn}`);
    return turns[req.turn];
  };
}

export type MockProcessStats = Omit<MockStats, 'authorizations' | 'bodies'>;

export interface MockOpenAIProcess {
  /** Base URL for the SDK, e.g. `http://127.0.0.1:41234/v1`. */
  url: string;
  port: number;
  pid: number;
  stats(): Promise<MockProcessStats>;
  close(): Promise<void>;
}

export interface ForkMockOptions {
  replies: RecordedReplies;
  latencyMs?: number;
  model?: string;
  port?: number;
}

/** Start `mock-openai-cli` as a child process (IPC channel) and wait until it listens. */
export async function forkMockOpenAI(opts: ForkMockOptions): Promise<MockOpenAIProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-mock-'));
  const file = join(dir, 'replies.json');
  writeFileSync(file, JSON.stringify(opts.replies));
  // the sibling entry point, in whatever form this module runs (.ts under tsx, .js once built)
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const entry = fileURLToPath(new URL(`./mock-openai-cli${ext}`, import.meta.url));
  const args = ['--replies', file, '--latency', String(opts.latencyMs ?? 0), '--model', opts.model ?? 'mock-model'];
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  const child: ChildProcess = fork(entry, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // not the parent's flags (--test, --cpu-prof, …): only the TypeScript loader when running from source
    execArgv: ext === '.ts' ? ['--import', 'tsx'] : [],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let ready: { url: string; port: number };
  try {
    ready = await new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`mock model process exited with ${code}: ${stderr.trim()}`));
      child.once('exit', onExit);
      child.once('error', reject);
      child.on('message', function onMsg(msg: { type?: string; url?: string; port?: number }) {
        if (msg?.type !== 'ready') return;
        child.off('message', onMsg);
        child.off('exit', onExit);
        resolve({ url: msg.url!, port: msg.port! });
      });
    });
  } finally {
    cleanup();
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    url: ready.url,
    port: ready.port,
    pid: child.pid!,
    stats: () =>
      new Promise((resolve, reject) => {
        const onExit = () => reject(new Error('mock model process exited'));
        child.once('exit', onExit);
        child.on('message', function onMsg(msg: { type?: string; stats?: MockProcessStats }) {
          if (msg?.type !== 'stats') return;
          child.off('message', onMsg);
          child.off('exit', onExit);
          resolve(msg.stats!);
        });
        child.send({ type: 'stats' });
      }),
    close: async () => {
      if (child.connected) child.send({ type: 'close' });
      else child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
