import type { ChatMessage, HistoryItem, TaskCase } from '../tasks/types.js';
import type { FunctionTool, ToolCallText } from '../protocol/tools.js';

/** Token accounting for one model call. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** What an agent returns for one turn. */
export interface AgentReply {
  /** Raw text exactly as the model produced it. */
  content: string;
  usage?: Usage;
  /** The backend reported a context-limit error: the episode ends with `agent context limit`. */
  contextLimit?: boolean;
  /** `content` is empty but the reply carried text in this reasoning field (`reasoning_content`, `reasoning`). */
  reasoningOnly?: string;
}

/** Per-episode information an agent may use (scripted agents need the task; model agents ignore it). */
export interface EpisodeInfo {
  index: number;
  task: TaskCase;
  apiBase: string;
  signal?: AbortSignal;
}

/** One turn of the `tools` / `mcp` protocols as an agent sees it. */
export interface ToolsTurn {
  /** The native transcript so far (OpenAI Chat Completions messages). */
  messages: ChatMessage[];
  /** The same episode as a text-protocol history (what scripted policies read). */
  history: HistoryItem[];
  tools: FunctionTool[];
}

/** What an agent returns for one turn of the `tools` / `mcp` protocols. */
export interface ToolsReply {
  /** The reply's text (null or empty when it only calls tools). */
  content: string | null;
  /** The tool calls, in order (`id` as the model gave it). */
  toolCalls: Array<ToolCallText & { id: string }>;
  usage?: Usage;
  contextLimit?: boolean;
  reasoningOnly?: string;
}

/** Anything that can play the agent role in the official protocol. */
export interface Agent {
  /** Stable name recorded in run manifests (no secrets). */
  readonly name: string;
  /** Configuration recorded in run manifests (no secrets). */
  readonly config: Record<string, unknown>;
  act(history: HistoryItem[], episode: EpisodeInfo): Promise<AgentReply>;
  /** The `tools` / `mcp` protocols (agents without it can only play `text`). */
  actTools?(turn: ToolsTurn, episode: EpisodeInfo): Promise<ToolsReply>;
  close?(): Promise<void>;
}
