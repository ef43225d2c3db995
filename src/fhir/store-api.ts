import type { IndexKeys, Resource } from './types.js';

/**
 * The contract between worlds (which fill a store) and the FHIR store (src/fhir/store.ts implements it).
 * Base data is added before `freeze()`; afterwards it is immutable and every write goes to a session overlay.
 */
export interface StoreLoader {
  /** Add a fully-formed resource. The store assigns an id when absent and extracts its own search keys. Returns the id. */
  add(resource: Resource): string;
  /**
   * Add a resource whose JSON is built on demand (bulk worlds). `keys` must hold every search key the resource
   * would yield; `materialize` must return the same JSON every time (deterministic, no clock).
   */
  addLazy(resourceType: string, id: string, keys: IndexKeys, materialize: () => Resource): string;
}
