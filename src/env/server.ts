/**
 * `ehrgym env serve`: the environment server — the ORS and OpenEnv surfaces on one port, over one EnvCore (one
 * session cap, the same episodes). Hono routes the HTTP surfaces; the `ws` library answers the WebSocket upgrade
 * of `/ws`.
 */
import { closeServer } from '../fhir/node-http.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { WebSocketServer } from 'ws';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { embeddedBackend } from '../eval/backend.js';
import { loadWorld, type WorldName } from '../worlds/index.js';
import { EnvCore, type EnvWorld } from './core.js';
import { MAX_BODY_BYTES } from './http.js';
import { redirectToDefaultEnv, registerOrs } from './ors.js';
import { registerOpenEnv, serveWebSocket } from './openenv.js';
import {
  checkSplits,
  DEFAULT_TRAIN_SEED,
  DEFAULT_TRAIN_SIZE,
  fileSplit,
  REPLICA,
  suiteTrainSplit,
  testSplit,
  trainSplit,
  worldKey,
  type Split,
} from './tasks.js';
import type { TaskWorld } from '../tasks/loader.js';
import { checkWorldFingerprint, TaskSetError } from '../tasks/loader.js';
import { plantRequest, suiteNames, suitePlantings } from '../tasks/registry.js';
import { SplitError } from './tasks.js';

/** The HTTP app of both surfaces. */
export function createEnvApp(core: EnvCore): Hono {
  const app = new Hono();
  app.use('*', redirectToDefaultEnv());
  registerOpenEnv(app, core);
  registerOrs(app, core);
  app.notFound((c) => c.json({ detail: 'Not Found' }, 404));
  app.onError((e, c) => c.json({ detail: `${e.name}: ${e.message}` }, 500));
  return app;
}

export interface EnvBuildOptions {
  trainSize?: number;
  trainSeed?: number;
  /** Extra task files, one split each. */
  taskFiles?: string[];
  maxSessions?: number;
  idleTimeoutMs?: number;
  maxSteps?: number;
  /** Prefix of minted session ids (docs/scale.md). */
  replicaId?: string;
  /** Train tasks asked per family of a suite's train split (`--tasks ehrgym-clinical`; default 60). */
  suiteTrainPerFamily?: number;
  /** Called as each loading stage starts ("loading the world medagentbench", "generating the train split", …). */
  onStage?: (stage: string) => void;
}

export interface BuiltEnv {
  core: EnvCore;
  /** Train tasks the pollution rules dropped. */
  trainDropped: number;
}

/** Load the worlds and build the splits (test, train, files) into an EnvCore. Throws SplitError on bad task files. */
export async function buildEnv(opts: EnvBuildOptions = {}): Promise<BuiltEnv> {
  const apiBase = OFFICIAL_API_BASE;
  type Loaded = EnvWorld & { patients: string[]; fingerprint: string };
  const worlds = new Map<string, Loaded>();
  const open = async (w: TaskWorld): Promise<Loaded> => {
    const k = worldKey(w);
    const have = worlds.get(k);
    if (have) return have;
    const name = w.name as WorldName;
    opts.onStage?.(
      `loading the world ${name === 'synthetic' ? `synthetic (seed ${w.seed ?? 1}, ${w.patients ?? 500} patients${w.suite ? `, ${w.suite}` : ''})` : name}`,
    );
    const world = await loadWorld(
      name === 'synthetic'
        ? {
            world: 'synthetic',
            seed: w.seed ?? 1,
            patients: w.patients ?? 500,
            ...(w.suite ? { plantings: suitePlantings(w.suite) } : { plant: plantRequest() }),
          }
        : { world: name },
    );
    const meta = {
      name: world.name,
      ...(world.seed !== undefined ? { seed: world.seed, patients: world.patientIds.length } : {}),
      fingerprint: world.fingerprint,
    };
    const entry = {
      key: k,
      store: world.store,
      backend: embeddedBackend(world.store, meta, apiBase),
      patients: world.patientIds,
      fingerprint: world.fingerprint,
    };
    worlds.set(k, entry);
    return entry;
  };
  // task files are read and checked before any world is loaded: a bad file fails at once
  const files = (opts.taskFiles ?? []).map((path) => ({ ...fileSplit(path), path }));
  let suiteDropped = 0;
  checkSplits([testSplit(), ...files.map((f) => f.split)]);
  const replica = await open({ name: REPLICA });
  const splits: Split[] = [testSplit()];
  opts.onStage?.(`generating the train split (${opts.trainSize ?? DEFAULT_TRAIN_SIZE} tasks asked)`);
  const train = await trainSplit({
    size: opts.trainSize ?? DEFAULT_TRAIN_SIZE,
    seed: opts.trainSeed ?? DEFAULT_TRAIN_SEED,
    patients: replica.patients,
    world: { apiBase, fhir: replica.backend.base },
  });
  splits.push(train.split);
  for (const { split, world, path: f } of files) {
    const w = await open(world);
    try {
      checkWorldFingerprint({ name: split.name, path: f, world }, { fingerprint: w.fingerprint });
    } catch (e) {
      if (e instanceof TaskSetError) throw new SplitError(`--tasks: ${e.message}`);
      throw e;
    }
    splits.push(split);
    // a suite (`--tasks ehrgym-clinical`): its train split on the same world, beside the frozen test split
    if (world.suite !== undefined && suiteNames().includes(f)) {
      opts.onStage?.(`generating the ${f} train split`);
      const built = await suiteTrainSplit(world.suite, {
        world: { apiBase, fhir: w.backend.base },
        patients: w.patients,
        worldKey: w.key,
        perFamily: opts.suiteTrainPerFamily,
      });
      splits.push(built.split);
      suiteDropped += built.dropped.length;
    }
  }
  checkSplits(splits);
  const core = new EnvCore({
    splits,
    worlds: [...worlds.values()],
    apiBase,
    maxSessions: opts.maxSessions,
    idleTimeoutMs: opts.idleTimeoutMs,
    maxSteps: opts.maxSteps,
    replicaId: opts.replicaId,
  });
  return { core, trainDropped: train.dropped.length + suiteDropped };
}

export interface StartedEnvServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listen on host:port (0 = any free port) with both surfaces. */
export function startEnvServer(core: EnvCore, opts: { host?: string; port?: number } = {}): Promise<StartedEnvServer> {
  const host = opts.host ?? '127.0.0.1';
  const app = createEnvApp(core);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES });
  wss.on('connection', (ws) => serveWebSocket(core, ws));
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port: opts.port ?? 0 }, (info: AddressInfo) => {
      const h = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${info.port}`,
        port: info.port,
        close: async () => {
          await core.shutdown();
          for (const c of wss.clients) c.terminate();
          await new Promise<void>((res) => wss.close(() => res()));
          await closeServer(server);
        },
      });
    }) as unknown as Server;
    server.on('upgrade', (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path !== '/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
    server.on('error', reject);
  });
}
