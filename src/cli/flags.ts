/**
 * Shared flag validators of the CLI commands. Each throws a `CliError` (exit 2) whose message names the flag and the
 * value it got, so every command reports bad input the same way: `ehrgym: <message>` on stderr, exit code 2.
 */
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CliError } from './errors.js';
import { DEFAULT_SYNTHETIC_PATIENTS } from '../worlds/index.js';
import { parseShardSpec, type ShardSpec } from '../eval/shard.js';
import { checkReplicaId, REPLICA_ID_ENV } from '../fhir/replica.js';

/** The synthetic cohort size of every command when `--patients` is not given (one value: the worlds' default). */
export const DEFAULT_PATIENTS = DEFAULT_SYNTHETIC_PATIENTS;

/** Example URLs shown in the messages of the URL flags. */
export const URL_EXAMPLES: Record<string, string> = {
  '--base-url': 'http://127.0.0.1:8000/v1',
  '--fhir-url': 'http://localhost:8080/fhir/',
  '--api-base': 'http://localhost:8080/fhir/',
};

/** An absolute http(s) URL with a host; `127.0.0.1:8000` (no scheme) and `localhost:8000` are refused. */
export function httpUrl(flag: string, value: string): string {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') {
    const example = URL_EXAMPLES[flag] ?? 'http://127.0.0.1:8080/';
    throw new CliError(`${flag} must be an http(s) URL such as ${example}, got "${value}"`);
  }
  return value;
}

/** An optional URL flag: validated when given. */
export function optionalHttpUrl(flag: string, value: string | undefined): string | undefined {
  return value === undefined ? undefined : httpUrl(flag, value);
}

/** An integer flag in [min, max]: `--port must be an integer, got "x"` / `--port must be between 0 and 65535, got 70000`. */
export function intFlag(flag: string, value: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim())) throw new CliError(`${flag} must be an integer, got "${value}"`);
  const n = Number(value.trim());
  if (n < min || n > max) {
    throw new CliError(max === Number.MAX_SAFE_INTEGER ? `${flag} must be ≥ ${min}, got ${value}` : `${flag} must be between ${min} and ${max}, got ${value}`);
  }
  return n;
}

/** `intFlag` for a flag that may be absent. */
export function optionalIntFlag(flag: string, value: string | undefined, min: number, max?: number): number | undefined {
  return value === undefined ? undefined : intFlag(flag, value, min, max);
}

/**
 * The replica id of a server (`--replica-id`, else the environment variable EHRGYM_REPLICA_ID, else none): the prefix of
 * the session ids it mints, which a load balancer routes on (docs/scale.md). An empty variable counts as unset.
 */
export function replicaIdFlag(value: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env[REPLICA_ID_ENV];
  const v = value ?? (fromEnv === undefined || fromEnv === '' ? undefined : fromEnv);
  if (v === undefined) return undefined;
  try {
    return checkReplicaId(v);
  } catch (e) {
    const source = value !== undefined ? '--replica-id' : `${REPLICA_ID_ENV} (--replica-id)`;
    throw new CliError(`${source}: ${(e as Error).message}`);
  }
}

/** The nearest existing ancestor of `abs` (itself included). */
function nearestExisting(abs: string): string {
  let p = abs;
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

/**
 * Checks that an output path can be written before any work starts: no file in the way of a folder to create
 * (`ENOTDIR`), and the folder that would hold it is writable. `kind` is what the flag names: a folder to create or
 * fill, or a file to write. Throws a CliError (exit 2) naming the flag and the path.
 */
export function outputPath(flag: string, path: string, kind: 'dir' | 'file' = 'dir'): string {
  if (path.trim() === '') throw new CliError(`${flag} must not be empty`);
  const abs = resolve(path);
  if (existsSync(abs)) {
    const isDir = statSync(abs).isDirectory();
    if (kind === 'dir' && !isDir) throw new CliError(`${flag} ${path}: is a file, not a folder`);
    if (kind === 'file' && isDir) throw new CliError(`${flag} ${path}: is a folder, not a file`);
  }
  const holder = existsSync(abs) && kind === 'dir' ? abs : nearestExisting(kind === 'file' ? dirname(abs) : abs);
  if (!statSync(holder).isDirectory()) throw new CliError(`${flag} ${path}: cannot create it, ${holder} is a file`);
  try {
    accessSync(holder, constants.W_OK | constants.X_OK);
  } catch {
    throw new CliError(`${flag} ${path}: ${holder} is not writable`);
  }
  return path;
}

/** An existing folder (e.g. the run folder `--resume` continues). */
export function existingDir(flag: string, path: string, hint = ''): string {
  if (!existsSync(path)) throw new CliError(`${flag}: ${path} does not exist${hint ? ` (${hint})` : ''}`);
  if (!statSync(path).isDirectory()) throw new CliError(`${flag}: ${path} is not a folder`);
  return path;
}

/** True when `path` is missing or an empty folder. */
export function isEmptyOrMissing(path: string): boolean {
  if (!existsSync(path)) return true;
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

/** `--shard i/N`: shard i (0-based, as JOB_COMPLETION_INDEX and SLURM_ARRAY_TASK_ID) of N. */
export function shardFlag(flag: string, value: string | undefined): ShardSpec | undefined {
  if (value === undefined) return undefined;
  const s = parseShardSpec(value);
  if (typeof s === 'string') throw new CliError(`${flag}: ${s}`);
  return s;
}
