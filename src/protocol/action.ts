/**
 * The canonical agent action: what an agent asked for in one turn, independent of the protocol that carried it.
 * The text protocol (src/protocol/text.ts) parses a reply into one and formats one back; the report and the graders
 * read actions in this shape.
 *
 * - `get`: a FHIR read; `url` as the agent wrote it (the text harness appends `&_format=json` when it sends it).
 * - `post`: a FHIR create; `url` as written, `body` the JSON text exactly as written (parsed by whoever executes it).
 * - `put`: a FHIR update (`url` = `{api_base}<Type>/<id>`, `body` as written): the `ehrgym` dialect only
 *   (src/protocol/dialect.ts); in MedAgentBench's protocol a `PUT` reply is an invalid action, as upstream.
 * - `finish`: the episode's answer text (the official result, a JSON list as text when the agent follows the prompt).
 * - `invalid`: a reply the protocol cannot read; the official harness ends the episode (`agent invalid action`).
 */
export type Action =
  | { kind: 'get'; url: string }
  | { kind: 'post'; url: string; body: string }
  | { kind: 'put'; url: string; body: string }
  | { kind: 'finish'; answer: string }
  | { kind: 'invalid' };

/** The actions that send a body to the FHIR server. */
export type WriteAction = Extract<Action, { kind: 'post' | 'put' }>;

export type ActionKind = Action['kind'];

/** The agent protocols: the official text protocol (default), OpenAI function calling, MCP tools (docs/eval.md). */
export type Protocol = 'text' | 'tools' | 'mcp';
export const PROTOCOLS: readonly Protocol[] = ['text', 'tools', 'mcp'];
