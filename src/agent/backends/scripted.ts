/**
 * Scripted agents: fixed policies used as baselines, for replays and for the expert (oracle) trajectories.
 */
import { readFileSync } from 'node:fs';
import type { Agent, AgentReply, EpisodeInfo, ToolsReply, ToolsTurn } from '../types.js';
import type { ChatMessage, HistoryItem, TaskCase } from '../../tasks/types.js';
import { parseAction } from '../../protocol/text.js';
import { actionToCall } from '../../protocol/tools.js';
import { MEDAGENTBENCH_DIALECT, taskDialect, type Dialect } from '../../protocol/dialect.js';

/**
 * A text-protocol reply as a `tools` turn: the tool call that performs the same action (`actionToCall`), with a
 * deterministic id; a reply that is no action stays text (which ends a tools episode as it ends a text one).
 */
export function textReplyAsToolCall(text: string, apiBase: string, messages: readonly ChatMessage[], dialect: Dialect = MEDAGENTBENCH_DIALECT): ToolsReply {
  const action = parseAction(text, { put: dialect.put });
  if (action.kind === 'invalid') return { content: text, toolCalls: [] };
  const turn = messages.filter((m) => m.role === 'assistant').length + 1;
  return { content: null, toolCalls: [{ id: `call_${turn}`, ...actionToCall(action, apiBase, dialect) }] };
}

/** A policy: given the task and the history so far, the next raw agent message. */
export type Policy = (task: TaskCase, history: HistoryItem[], episode: EpisodeInfo) => string | Promise<string>;

/** An agent that plays a policy. */
export class PolicyAgent implements Agent {
  constructor(
    readonly name: string,
    private readonly policy: Policy,
    readonly config: Record<string, unknown> = { backend: 'scripted' },
  ) {}
  async act(history: HistoryItem[], episode: EpisodeInfo): Promise<AgentReply> {
    return { content: await this.policy(episode.task, history, episode) };
  }
  async actTools(turn: ToolsTurn, episode: EpisodeInfo): Promise<ToolsReply> {
    return textReplyAsToolCall(await this.policy(episode.task, turn.history, episode), episode.apiBase, turn.messages, taskDialect(episode.task));
  }
}

/** Always `FINISH([])`. */
export function finishEmptyAgent(): Agent {
  return new PolicyAgent('finish-empty', () => 'FINISH([])', { backend: 'scripted', reply: 'FINISH([])' });
}

/** Always `FINISH(["unknown"])`. */
export function giveUpAgent(): Agent {
  return new PolicyAgent('give-up', () => 'FINISH(["unknown"])', { backend: 'scripted', reply: 'FINISH(["unknown"])' });
}

export interface RecordedEpisode {
  status: string;
  agentMessages: string[];
  /** A `tools` / `mcp` run's assistant messages (its native transcript), replayed as they are in those protocols. */
  assistantMessages?: Array<Extract<ChatMessage, { role: 'assistant' }>>;
}

/** Parse a runs.jsonl (ours or the official harness's) into the agent messages of each task index. */
export function loadRecordedRun(path: string, text?: string): Map<number, RecordedEpisode> {
  const src = text ?? readFileSync(path, 'utf8');
  const out = new Map<number, RecordedEpisode>();
  const lines = src.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: any;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new Error(`${path}:${i + 1}: not valid JSON`);
    }
    const output = rec?.output;
    const index = typeof rec?.index === 'number' ? rec.index : output?.index;
    if (typeof index !== 'number' || !output || !Array.isArray(output.history)) {
      throw new Error(`${path}:${i + 1}: not an AgentBench runs line (index, output.history)`);
    }
    const episode: RecordedEpisode = {
      status: String(output.status ?? ''),
      agentMessages: output.history.filter((h: HistoryItem) => h.role === 'agent').map((h: HistoryItem) => h.content),
    };
    if (Array.isArray(output.messages)) episode.assistantMessages = output.messages.filter((m: ChatMessage) => m?.role === 'assistant');
    out.set(index, episode);
  });
  return out;
}

/**
 * Re-sends a recorded run's agent messages, by task index, in order. In the `tools` / `mcp` protocols a tools run's
 * assistant messages are re-sent as they are; a text run's replies become the tool calls of the same actions.
 */
export class ReplayAgent implements Agent {
  readonly name: string;
  readonly config: Record<string, unknown>;
  private readonly episodes: Map<number, RecordedEpisode>;
  constructor(path: string, episodes?: Map<number, RecordedEpisode>) {
    this.episodes = episodes ?? loadRecordedRun(path);
    this.name = `replay:${path}`;
    this.config = { backend: 'replay', path, episodes: this.episodes.size };
  }
  async act(history: HistoryItem[], episode: EpisodeInfo): Promise<AgentReply> {
    const rec = this.episodes.get(episode.index);
    if (!rec) throw new Error(`replay: the recorded run has no task index ${episode.index}`);
    const turn = history.filter((h) => h.role === 'agent').length;
    if (turn < rec.agentMessages.length) return { content: rec.agentMessages[turn] };
    if (rec.status.startsWith('agent context limit')) return { content: '', contextLimit: true };
    throw new Error(`replay: the recorded run has no agent message #${turn + 1} for task index ${episode.index}`);
  }
  async actTools(t: ToolsTurn, episode: EpisodeInfo): Promise<ToolsReply> {
    const rec = this.episodes.get(episode.index);
    if (!rec) throw new Error(`replay: the recorded run has no task index ${episode.index}`);
    const turn = t.messages.filter((m) => m.role === 'assistant').length;
    if (rec.assistantMessages) {
      const m = rec.assistantMessages[turn];
      if (m) return { content: m.content, toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) };
    } else if (turn < rec.agentMessages.length) {
      return textReplyAsToolCall(rec.agentMessages[turn], episode.apiBase, t.messages, taskDialect(episode.task));
    }
    if (rec.status.startsWith('agent context limit')) return { content: '', toolCalls: [], contextLimit: true };
    throw new Error(`replay: the recorded run has no agent message #${turn + 1} for task index ${episode.index}`);
  }
}
