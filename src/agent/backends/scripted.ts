/**
 * Scripted agents: fixed policies used as baselines, for replays and for the expert (oracle) trajectories.
 */
import { readFileSync } from 'node:fs';
import type { Agent, AgentReply, EpisodeInfo } from '../types.js';
import type { HistoryItem, TaskCase } from '../../tasks/types.js';

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
    out.set(index, {
      status: String(output.status ?? ''),
      agentMessages: output.history.filter((h: HistoryItem) => h.role === 'agent').map((h: HistoryItem) => h.content),
    });
  });
  return out;
}

/** Re-sends a recorded run's agent messages, by task index, in order. */
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
}
