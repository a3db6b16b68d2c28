// The routing decision as the journal records it: the puts and removes a commit makes on the spool's
// LMDB sub-databases (the instance row, the study index, and whatever the caller's `extra` writes:
// outbound queue items, completion-group membership, a prefetch plan), captured as they happen inside
// the index transaction. Replay re-applies exactly these writes. Each op is absolute (the whole value),
// so applying a suffix of the log again over a state that already holds part of it gives the same state.
import type { RootDatabase } from 'lmdb';

type DbOptions = { dupSort?: boolean; encoding?: string; keyEncoding?: string };
export type RedoOp = { db: string; opts: DbOptions; op: 'put' | 'remove'; key: unknown; value?: unknown };

type AnyDb = Record<string, (...args: unknown[]) => unknown>;

export class RedoCapture {
  #root: RootDatabase;
  #ops: RedoOp[] | undefined;
  #dbs = new Map<string, AnyDb>();
  #instrumented = new WeakSet<object>();

  /** From now on every sub-database opened on `root` reports its writes while a capture runs. */
  constructor(root: RootDatabase) {
    this.#root = root;
    const openDB = root.openDB.bind(root) as unknown as (a: unknown, b?: unknown) => AnyDb;
    (root as unknown as { openDB: unknown }).openDB = (a: unknown, b?: unknown) => {
      const given = (typeof a === 'string' ? { ...(b as object | undefined), name: a } : { ...(a as object) }) as DbOptions & { name?: string };
      const db = openDB(a, b);
      if (given.name !== undefined) this.#instrument(db, given.name, pick(given));
      return db;
    };
  }

  /** Run `fn` (synchronously, inside a write transaction) and return what it wrote. */
  capture(fn: () => void): RedoOp[] {
    const ops: RedoOp[] = [];
    const outer = this.#ops;
    this.#ops = ops;
    try {
      fn();
    } finally {
      this.#ops = outer;
    }
    return ops;
  }

  /** Apply ops recorded by capture(); must run inside a write transaction. */
  apply(ops: readonly RedoOp[]): void {
    for (const op of ops) {
      const open = this.#root.openDB as unknown as (opts: object) => AnyDb;
      const db = this.#dbs.get(op.db) ?? open.call(this.#root, { name: op.db, ...op.opts });
      if (op.op === 'put') db.put(op.key, op.value);
      else if (op.value !== undefined) db.remove(op.key, op.value);
      else db.remove(op.key);
    }
  }

  #instrument(db: AnyDb, name: string, opts: DbOptions): void {
    this.#dbs.set(name, db);
    if (this.#instrumented.has(db)) return;
    this.#instrumented.add(db);
    for (const method of ['put', 'putSync'] as const) {
      const original = db[method].bind(db);
      db[method] = (key: unknown, value: unknown, ...rest: unknown[]) => {
        this.#ops?.push({ db: name, opts, op: 'put', key, value });
        return original(key, value, ...rest);
      };
    }
    for (const method of ['remove', 'removeSync'] as const) {
      const original = db[method].bind(db);
      db[method] = (key: unknown, value?: unknown) => {
        // On a dupSort database the second argument names the value to remove; elsewhere it is a version.
        this.#ops?.push({ db: name, opts, op: 'remove', key, ...(opts.dupSort && value !== undefined ? { value } : {}) });
        return value === undefined ? original(key) : original(key, value);
      };
    }
  }
}

function pick(o: DbOptions): DbOptions {
  const out: DbOptions = {};
  if (o.dupSort !== undefined) out.dupSort = o.dupSort;
  if (o.encoding !== undefined) out.encoding = o.encoding;
  if (o.keyEncoding !== undefined) out.keyEncoding = o.keyEncoding;
  return out;
}

/**
 * Writes outside the journal (deliveries, retries, retention, completion firing…) must not land between
 * a group's capture and its apply, or the apply would overwrite them with values computed before them
 * (a queue sequence number handed out twice, say). The root's transaction() and childTransaction() wait
 * until the journal is quiet, then run synchronously (cheap: the database is opened without sync).
 */
export function serializeWrites(root: RootDatabase, whenQuiet: () => Promise<void> | undefined, flags: number): void {
  const sync = root.transactionSync.bind(root) as (cb: () => unknown, flags: number) => unknown;
  const run = async (cb: () => unknown): Promise<unknown> => {
    for (let quiet = whenQuiet(); quiet; quiet = whenQuiet()) await quiet;
    return sync(cb, flags);
  };
  const r = root as unknown as Record<string, unknown>;
  r.transaction = run;
  r.childTransaction = run;
}
