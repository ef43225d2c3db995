/**
 * Atomic folder output: everything is written into a sibling temporary folder, then renamed into place, so a failed
 * or interrupted run never leaves a half-written corpus. A folder that already holds a different corpus (or anything
 * that is not one of ours) is refused unless `force` is set.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { FactoryInputError } from './errors.js';

/** The file in every folder we write that names its content. */
export interface FolderIdentity {
  /** `sft-corpus`, `sft-export`, `train-config`. */
  kind: string;
  /** Stable identity of the content (a hash of the inputs that determine it). */
  id: string;
}

export const IDENTITY_FILE = '.ehrgym.json';

export function readIdentity(dir: string): FolderIdentity | null {
  const p = join(dir, IDENTITY_FILE);
  if (!existsSync(p)) return null;
  try {
    const j = JSON.parse(readFileSync(p, 'utf8')) as FolderIdentity;
    return typeof j.kind === 'string' && typeof j.id === 'string' ? j : null;
  } catch {
    return null;
  }
}

/**
 * Check that `dir` may receive content with identity `ident`: absent, empty, or holding the same identity.
 * Throws FactoryInputError naming the folder otherwise (unless force).
 */
export function checkOutputFolder(dir: string, ident: FolderIdentity, force: boolean, flag = '--out'): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new FactoryInputError(`${flag} ${dir} exists and is not a folder`);
  if (readdirSync(dir).length === 0 || force) return;
  const cur = readIdentity(dir);
  if (!cur) throw new FactoryInputError(`${flag} ${dir} is not empty and was not written by ehrgym (use --force to replace it)`);
  if (cur.kind !== ident.kind || cur.id !== ident.id) {
    throw new FactoryInputError(`${flag} ${dir} holds a different ${cur.kind === ident.kind ? cur.kind : cur.kind + ' folder'} (use --force to replace it)`);
  }
}

/**
 * Write `files` (relative path → content) plus the identity file into `dir` atomically.
 * Content is written to `<dir>.tmp-<pid>` first; the old folder (if any) is moved aside, the new one renamed in,
 * and the old one removed.
 */
export function writeFolderAtomic(dir: string, ident: FolderIdentity, files: Record<string, string | Buffer>, force = false, flag = '--out'): void {
  const target = resolve(dir);
  checkOutputFolder(target, ident, force, flag);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(target)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    for (const [rel, content] of Object.entries(files)) {
      const p = join(tmp, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, content);
    }
    writeFileSync(join(tmp, IDENTITY_FILE), JSON.stringify(ident) + '\n');
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  let old: string | null = null;
  if (existsSync(target)) {
    old = join(parent, `.${basename(target)}.old-${process.pid}`);
    rmSync(old, { recursive: true, force: true });
    renameSync(target, old);
  }
  try {
    renameSync(tmp, target);
  } catch (e) {
    if (old) renameSync(old, target);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (old) rmSync(old, { recursive: true, force: true });
}
