import type { HistoryItem, TaskCase } from '../tasks/types.js';

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

/** Anything that can play the agent role in the official protocol. */
export interface Agent {
  /** Stable name recorded in run manifests (no secrets). */
  readonly name: string;
  /** Configuration recorded in run manifests (no secrets). */
  readonly config: Record<string, unknown>;
  act(history: HistoryItem[], episode: EpisodeInfo): Promise<AgentReply>;
  close?(): Promise<void>;
}
