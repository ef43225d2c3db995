/**
 * `Buffer.from(JSON.stringify(text))` for long strings on a worker thread, so that one process driving many episodes
 * does not spend its event loop escaping FHIR responses (a 128 kB searchset takes about 0.2 ms to escape and encode;
 * 64 of them arriving together would hold every other episode up for 13 ms). Short strings, and any failure of the
 * worker, take the synchronous path; the bytes are the same either way.
 */
import { Worker } from 'node:worker_threads';

/** Strings shorter than this are encoded in place (the round trip to the worker would cost more). */
export const OFF_THREAD_MIN_CHARS = 16 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const enc = new TextEncoder();
parentPort.on('message', ({ id, text }) => {
  const bytes = enc.encode(JSON.stringify(text));
  parentPort.postMessage({ id, bytes }, [bytes.buffer]);
});
`;

let worker: Worker | undefined;
let broken = false;
let nextId = 0;
const pending = new Map<number, (bytes: Buffer | undefined) => void>();

function getWorker(): Worker | undefined {
  if (broken) return undefined;
  if (worker) return worker;
  try {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    w.on('message', ({ id, bytes }: { id: number; bytes: Uint8Array }) => {
      const done = pending.get(id);
      pending.delete(id);
      done?.(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (pending.size === 0) w.unref();
    });
    const fail = () => {
      broken = true;
      worker = undefined;
      for (const done of pending.values()) done(undefined);
      pending.clear();
    };
    w.on('error', fail);
    w.on('exit', fail);
    worker = w;
    return w;
  } catch {
    broken = true;
    return undefined;
  }
}

/** The UTF-8 bytes of `JSON.stringify(text)`, from the worker for long strings; undefined means "encode it yourself". */
export function encodeJsonStringOffThread(text: string): Promise<Buffer | undefined> {
  if (text.length < OFF_THREAD_MIN_CHARS) return Promise.resolve(undefined);
  const w = getWorker();
  if (!w) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    w.ref();
    w.postMessage({ id, text });
  });
}
