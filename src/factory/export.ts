/**
 * Thin converters from canonical rows to the shapes trainers document (docs/factory.md, `ehrgym export`), and their
 * inverses (used to prove that every export round-trips to the canonical rows).
 *
 * Formats × row modes:
 *  - openai      trajectory: {messages:[…, {role:'assistant', content, weight:1}]} (no meta)
 *                per-turn:   one row per assistant turn, earlier assistant turns weight 0
 *  - trl         trajectory: {messages, chat_template_kwargs:{enable_thinking:false}}   (assistant_only_loss)
 *                per-turn:   {prompt:[…], completion:[assistant], chat_template_kwargs}   (completion-only loss)
 *  - axolotl     trajectory: {messages}   (type chat_template, roles_to_train [assistant])
 *                per-turn:   {messages: prefix}, earlier assistant turns `train: false` (message_field_training: train)
 *  - llamafactory trajectory: {conversations:[{from:human|gpt, value}]} + dataset_info.json (formatting sharegpt)
 *                per-turn:   prefix conversations (train with mask_history: true)
 * Meta never goes into trainer files; it is kept in a `meta.jsonl` sidecar (one line per canonical row).
 */
import type { CanonicalRow, ChatMessage, RowMeta } from './types.js';

export const EXPORT_FORMATS = ['openai', 'trl', 'axolotl', 'llamafactory'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const ROW_MODES = ['trajectory', 'per-turn'] as const;
export type RowMode = (typeof ROW_MODES)[number];

const THINKING_OFF = { enable_thinking: false } as const;

type Json = Record<string, unknown>;

/** Positions of the assistant messages of a conversation (text or tools). */
export function assistantIndices(messages: readonly { role: string }[]): number[] {
  const out: number[] = [];
  messages.forEach((m, i) => m.role === 'assistant' && out.push(i));
  return out;
}

function plain(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => ({ role: m.role, content: m.content }));
}

/** Convert one canonical conversation to the trainer rows of `format` / `mode` (1 row, or 1 per assistant turn). */
export function toTrainerRows(messages: ChatMessage[], format: ExportFormat, mode: RowMode): Json[] {
  if (mode === 'trajectory') return [trajectoryRow(messages, format)];
  return assistantIndices(messages).map((end) => perTurnRow(messages.slice(0, end + 1), format));
}

function trajectoryRow(messages: ChatMessage[], format: ExportFormat): Json {
  switch (format) {
    case 'openai':
      return {
        messages: messages.map((m) => (m.role === 'assistant' ? { role: m.role, content: m.content, weight: 1 } : { role: m.role, content: m.content })),
      };
    case 'trl':
      return { messages: plain(messages), chat_template_kwargs: { ...THINKING_OFF } };
    case 'axolotl':
      return { messages: plain(messages) };
    case 'llamafactory':
      return { conversations: messages.map((m) => ({ from: m.role === 'user' ? 'human' : 'gpt', value: m.content })) };
  }
}

/** `prefix` ends with the assistant turn to train. */
function perTurnRow(prefix: ChatMessage[], format: ExportFormat): Json {
  const last = prefix.length - 1;
  switch (format) {
    case 'openai':
      return {
        messages: prefix.map((m, i) =>
          m.role === 'assistant' ? { role: m.role, content: m.content, weight: i === last ? 1 : 0 } : { role: m.role, content: m.content },
        ),
      };
    case 'trl':
      return { prompt: plain(prefix.slice(0, last)), completion: plain(prefix.slice(last)), chat_template_kwargs: { ...THINKING_OFF } };
    case 'axolotl':
      return {
        messages: prefix.map((m, i) =>
          m.role === 'assistant' && i !== last ? { role: m.role, content: m.content, train: false } : { role: m.role, content: m.content },
        ),
      };
    case 'llamafactory':
      return { conversations: prefix.map((m) => ({ from: m.role === 'user' ? 'human' : 'gpt', value: m.content })) };
  }
}

/** Recover the conversation (and, per-turn, the trained turn's index) from one trainer row; throws on a bad shape. */
export function fromTrainerRow(row: Json, format: ExportFormat, mode: RowMode): ChatMessage[] {
  const bad = (why: string): never => {
    throw new Error(`${format}/${mode} row: ${why}`);
  };
  const msgs = (list: unknown, roleKey = 'role', contentKey = 'content', map?: (r: string) => string): ChatMessage[] => {
    if (!Array.isArray(list)) bad('message list missing');
    return (list as Json[]).map((m) => {
      const role = map ? map(String(m[roleKey])) : String(m[roleKey]);
      const content = m[contentKey];
      if ((role !== 'user' && role !== 'assistant') || typeof content !== 'string') bad(`bad message ${JSON.stringify(m).slice(0, 80)}`);
      return { role: role as ChatMessage['role'], content: content as string };
    });
  };
  switch (format) {
    case 'openai': {
      const list = row.messages as Json[];
      const m = msgs(list);
      const asst = assistantIndices(m);
      for (const i of asst) {
        const w = list[i]!.weight;
        const want = mode === 'trajectory' || i === m.length - 1 ? 1 : 0;
        if (w !== want) bad(`assistant turn ${i} has weight ${String(w)}, expected ${want}`);
      }
      if ('meta' in row) bad('meta must not appear in OpenAI-format rows');
      return m;
    }
    case 'trl': {
      const kw = row.chat_template_kwargs as Json | undefined;
      if (!kw || kw.enable_thinking !== false) bad('chat_template_kwargs.enable_thinking must be false');
      if (mode === 'trajectory') return msgs(row.messages);
      const p = msgs(row.prompt);
      const c = msgs(row.completion);
      if (c.length !== 1 || c[0]!.role !== 'assistant') bad('completion must be one assistant message');
      return [...p, ...c];
    }
    case 'axolotl': {
      const list = row.messages as Json[];
      const m = msgs(list);
      if (mode === 'per-turn') {
        for (const i of assistantIndices(m)) {
          const t = list[i]!.train;
          if (i === m.length - 1 ? t !== undefined : t !== false) bad(`assistant turn ${i} has train=${String(t)}`);
        }
      }
      return m;
    }
    case 'llamafactory': {
      const map = (r: string) => (r === 'human' ? 'user' : r === 'gpt' ? 'assistant' : r);
      const m = msgs(row.conversations, 'from', 'value', map);
      m.forEach((x, i) => {
        if ((i % 2 === 0) !== (x.role === 'user')) bad(`human/gpt not at alternating positions (turn ${i})`);
      });
      return m;
    }
  }
}

/** Export canonical rows; returns trainer rows in order plus the meta sidecar lines. */
export function exportRows(rows: CanonicalRow[], format: ExportFormat, mode: RowMode): { lines: Json[]; metas: RowMeta[] } {
  const lines: Json[] = [];
  for (const r of rows) lines.push(...toTrainerRows(r.messages, format, mode));
  return { lines, metas: rows.map((r) => r.meta) };
}

/**
 * Rebuild canonical rows from exported trainer rows + the meta sidecar. Per-turn rows are grouped: a group starts at a
 * row with exactly one assistant turn; each row of a group must be a prefix of the next; the last one is the full
 * conversation. Throws when the structure does not match.
 */
export function importRows(lines: Json[], metas: RowMeta[], format: ExportFormat, mode: RowMode): CanonicalRow[] {
  const convs = lines.map((l) => fromTrainerRow(l, format, mode));
  return groupConversations(convs, metas, mode, (row, full) => (row.some((m, j) => full[j]!.role !== m.role || full[j]!.content !== m.content) ? '' : null));
}

/**
 * Conversations read back from trainer rows, with the meta sidecar, as rows: one per conversation (trajectory), or
 * per-turn rows grouped — a group starts at a row with exactly one assistant turn, row k of a group has k + 1
 * assistant turns and is a prefix of the group's last row (`prefixDiff` says how it differs, null when it does not),
 * the last row is the full conversation. Throws when the structure does not match.
 */
export function groupConversations<M extends { role: string }>(
  convs: M[][],
  metas: RowMeta[],
  mode: RowMode,
  prefixDiff: (row: M[], full: M[]) => string | null,
): Array<{ messages: M[]; meta: RowMeta }> {
  const out: Array<{ messages: M[]; meta: RowMeta }> = [];
  if (mode === 'trajectory') {
    if (convs.length !== metas.length) throw new Error(`${convs.length} rows but ${metas.length} meta lines`);
    convs.forEach((c, i) => out.push({ messages: c, meta: metas[i]! }));
    return out;
  }
  let group: M[][] = [];
  const flush = () => {
    if (group.length === 0) return;
    const full = group[group.length - 1]!;
    group.forEach((g, k) => {
      const n = assistantIndices(g).length;
      if (n !== k + 1) throw new Error(`per-turn group ${out.length}: row ${k} has ${n} assistant turns, expected ${k + 1}`);
      const d = prefixDiff(g, full);
      if (d !== null) throw new Error(`per-turn group ${out.length}: row ${k} is not a prefix of the full conversation${d ? ` (${d})` : ''}`);
    });
    const meta = metas[out.length];
    if (!meta) throw new Error(`more per-turn groups than meta lines (${metas.length})`);
    out.push({ messages: full, meta });
    group = [];
  };
  for (const c of convs) {
    if (assistantIndices(c).length === 1) flush();
    group.push(c);
  }
  flush();
  if (out.length !== metas.length) throw new Error(`${out.length} per-turn groups but ${metas.length} meta lines`);
  return out;
}

/** LLaMA-Factory `dataset_info.json` for the exported split files. */
export function llamafactoryDatasetInfo(splits: string[]): Json {
  const info: Json = {};
  for (const s of splits) {
    info[s === 'train' ? 'medagent_sft' : `medagent_sft_${s}`] = {
      file_name: `${s}.jsonl`,
      formatting: 'sharegpt',
      columns: { messages: 'conversations' },
    };
  }
  return info;
}
