/**
 * A small pool of factory worker threads (see worker.ts). Jobs go to the least-loaded worker; each worker runs many
 * jobs concurrently (they wait on HTTP). Results are matched to jobs by id, so callers see them in their own order.
 */
import { Worker } from 'node:worker_threads';
import type { TaskCase, TaskOutput } from '../tasks/types.js';

export type WorkerJob = {
  id: number;
  kind: 'solve';
  family: string;
  task: TaskCase;
  variant: string;
  session: string;
  index: number;
  /** `tools`: the episode in the tools protocol (live POSTs); absent: the text protocol. */
  protocol?: 'tools';
};

export type WorkerResult =
  | {
      id: number;
      kind: 'solve';
      output: TaskOutput;
      agentError?: string;
      grade: { correct: boolean; checks: Array<{ name: string; pass: boolean }>; exception?: string } | null;
    }
  | { id: number; kind: 'error'; error: string };

type JobInput = WorkerJob extends infer J ? (J extends WorkerJob ? Omit<J, 'id'> : never) : never;

export class FactoryWorkers {
  private readonly workers: Array<{ w: Worker; load: number }> = [];
  private readonly pending = new Map<number, { resolve: (r: WorkerResult) => void; reject: (e: Error) => void; slot: number }>();
  private next = 1;

  constructor(count: number, serverUrl: string) {
    const here = import.meta.url;
    const fromSource = here.endsWith('.ts');
    const file = new URL(fromSource ? './worker.ts' : './worker.js', here);
    // running from TypeScript sources (tsx): the loader hooks are not inherited by workers, so register them first
    const bootstrap = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(file.href)}); });`;
    for (let i = 0; i < count; i++) {
      const w = fromSource ? new Worker(bootstrap, { eval: true, workerData: { serverUrl } }) : new Worker(file, { workerData: { serverUrl } });
      w.on('message', (r: WorkerResult) => {
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        this.workers[p.slot]!.load--;
        if (r.kind === 'error') p.reject(new Error(r.error));
        else p.resolve(r);
      });
      w.on('error', (e) => {
        for (const [id, p] of this.pending)
          if (p.slot === i) {
            this.pending.delete(id);
            p.reject(e);
          }
      });
      w.unref();
      this.workers.push({ w, load: 0 });
    }
  }

  run<K extends WorkerJob['kind']>(job: Extract<JobInput, { kind: K }>): Promise<Extract<WorkerResult, { kind: K }>> {
    let slot = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.workers[i]!.load < this.workers[slot]!.load) slot = i;
    const id = this.next++;
    this.workers[slot]!.load++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: WorkerResult) => void, reject, slot });
      this.workers[slot]!.w.postMessage({ ...job, id });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(({ w }) => w.terminate()));
  }
}
