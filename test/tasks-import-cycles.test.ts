/**
 * src/tasks has no import cycle (runtime imports: static `import`/`export … from` and dynamic `import()`; type-only
 * imports are erased and do not count). The graph is read with a regex over the import statements, which is enough
 * for this code base's one-statement-per-import style; the checker is itself tested on a planted cycle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const TASKS_DIR = resolve(import.meta.dirname, '../src/tasks');

/** Runtime import edges between the `.ts` files of one folder (relative `./x.js` specifiers). */
export function importGraph(dir: string): Map<string, string[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  const graph = new Map<string, string[]>();
  const STATIC = /(?:^|[\n;])\s*(import|export)\s+(type\s+)?(?:[\w*\s{},$]*?\s+from\s+)?['"](\.\/[^'"]+)['"]/g;
  const DYNAMIC = /\bimport\(\s*['"](\.\/[^'"]+)['"]\s*\)/g;
  for (const f of files) {
    const src = readFileSync(join(dir, f), 'utf8');
    const deps = new Set<string>();
    for (const m of src.matchAll(STATIC)) if (!m[2]) deps.add(m[3]!);
    for (const m of src.matchAll(DYNAMIC)) deps.add(m[1]!);
    graph.set(
      f,
      [...deps].map((d) => d.slice(2).replace(/\.js$/, '.ts')).filter((d) => files.includes(d)),
    );
  }
  return graph;
}

/** Every elementary cycle reachable by DFS, each as a path `a → b → … → a` (empty: acyclic). */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

test('the checker reads static, re-export and dynamic imports and finds a planted cycle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-cycles-'));
  try {
    writeFileSync(join(dir, 'a.ts'), "import { b } from './b.js';\nimport type { T } from './d.js';\nexport const a = b;\n");
    writeFileSync(join(dir, 'b.ts'), "export { c } from './c.js';\nexport const b = 1;\n");
    writeFileSync(join(dir, 'c.ts'), "export async function c() {\n  const { a } = await import('./a.js');\n  return a;\n}\n");
    writeFileSync(join(dir, 'd.ts'), "import { a } from './a.js';\nexport type T = typeof a;\n");
    const g = importGraph(dir);
    assert.deepEqual(g.get('a.ts'), ['b.ts']);
    assert.deepEqual(g.get('d.ts'), ['a.ts']);
    assert.deepEqual(findCycles(g), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    writeFileSync(join(dir, 'c.ts'), 'export const c = 2;\n');
    assert.deepEqual(findCycles(importGraph(dir)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('src/tasks has no import cycle', () => {
  const g = importGraph(TASKS_DIR);
  assert.ok(g.size >= 17, `${g.size} files`);
  // the family files reach the grader primitives, and the registry reaches every family
  assert.ok(g.get('common.ts')!.includes('refsol.ts'));
  assert.ok(g.get('grade.ts')!.includes('registry.ts'));
  for (let n = 1; n <= 10; n++) assert.ok(g.get('registry.ts')!.includes(`task${n}.ts`), `registry → task${n}`);
  assert.deepEqual(
    findCycles(g).map((c) => c.join(' → ')),
    [],
  );
});
