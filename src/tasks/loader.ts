/**
 * Task-set loading: the shipped official files (`medagentbench-v1`, `medagentbench-v2`) or any file of the same
 * format (a JSON array of `{id, instruction, context, [sol], [eval_MRN]}`), validated with clear errors.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TaskCase } from './types.js';
import { FAMILY_IDS, isFamilyId } from './registry.js';

export interface TaskSet {
  /** `medagentbench-v2`, or the file's base name without extension. */
  name: string;
  /** Absolute path of the file read. */
  path: string;
  /** The records in file order, with their key order preserved. */
  tasks: TaskCase[];
  /** sha256 (hex) of the file's bytes. */
  sha256: string;
  rawText: string;
}

const DATA_DIR = fileURLToPath(new URL('../../data/medagentbench/', import.meta.url));

/** The built-in task sets. */
export const KNOWN_TASK_SETS: Readonly<Record<string, string>> = {
  'medagentbench-v1': 'test_data_v1.json',
  'medagentbench-v2': 'test_data_v2.json',
};

export class TaskSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskSetError';
  }
}

const ID_RE = /^(task\d+)_(\d+)$/;

/** Validate parsed records; `where` names the file in messages. */
export function validateTasks(data: unknown, where: string): TaskCase[] {
  if (!Array.isArray(data)) throw new TaskSetError(`${where}: expected a JSON array of task records, got ${data === null ? 'null' : typeof data}`);
  const seen = new Set<string>();
  data.forEach((rec, i) => {
    const at = `${where}: record ${i}`;
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new TaskSetError(`${at}: not an object`);
    const r = rec as Record<string, unknown>;
    if (typeof r.id !== 'string') throw new TaskSetError(`${at}: "id" must be a string`);
    const m = ID_RE.exec(r.id);
    if (!m) throw new TaskSetError(`${at}: id "${r.id}" is not of the form task<N>_<k>`);
    if (!isFamilyId(m[1])) {
      throw new TaskSetError(`${at} (id "${r.id}"): unknown task family "${m[1]}" (known: ${FAMILY_IDS.join(', ')})`);
    }
    if (seen.has(r.id)) throw new TaskSetError(`${at}: duplicate id "${r.id}"`);
    seen.add(r.id);
    for (const k of ['instruction', 'context'] as const) {
      if (typeof r[k] !== 'string') throw new TaskSetError(`${at} (id "${r.id}"): "${k}" must be a string`);
    }
    if ('sol' in r && !(Array.isArray(r.sol) && r.sol.every((s) => typeof s === 'string'))) {
      throw new TaskSetError(`${at} (id "${r.id}"): "sol" must be an array of strings`);
    }
    if ('eval_MRN' in r && typeof r.eval_MRN !== 'string') {
      throw new TaskSetError(`${at} (id "${r.id}"): "eval_MRN" must be a string`);
    }
    if (m[1] === 'task1' && !('sol' in r)) throw new TaskSetError(`${at} (id "${r.id}"): task1 records need "sol"`);
    if (m[1] !== 'task1' && !('eval_MRN' in r)) {
      throw new TaskSetError(`${at} (id "${r.id}"): ${m[1]} records need "eval_MRN"`);
    }
  });
  return data as TaskCase[];
}

/** Resolve a set name or a path to a file path. */
export function resolveTaskSet(nameOrPath: string): { name: string; path: string } {
  const known = KNOWN_TASK_SETS[nameOrPath];
  if (known) return { name: nameOrPath, path: DATA_DIR + known };
  if (existsSync(nameOrPath)) return { name: basename(nameOrPath, extname(nameOrPath)), path: nameOrPath };
  throw new TaskSetError(`unknown task set "${nameOrPath}": not a file and not one of ${Object.keys(KNOWN_TASK_SETS).join(', ')}`);
}

/** Load and validate a task set. Throws `TaskSetError` with a message naming the set or file. */
export function loadTaskSet(nameOrPath: string): TaskSet {
  const { name, path } = resolveTaskSet(nameOrPath);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new TaskSetError(`cannot read task file ${path}: ${(e as Error).message}`);
  }
  const rawText = buf.toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(rawText);
  } catch (e) {
    throw new TaskSetError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const tasks = validateTasks(data, path);
  return { name, path, tasks, sha256: createHash('sha256').update(buf).digest('hex'), rawText };
}
