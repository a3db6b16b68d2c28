// What the spool checks when it opens (and on demand): leftovers of a crash, and the index against the files.
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import type { InstanceRecord } from './spool.ts';

export type SpoolStartupReport = {
  tempFilesRemoved: number;
  checked: number;
  missing: number;
  sizeMismatch: number;
  /** The first 1000 problems found. */
  problems: Array<{ sopInstanceUid: string; path: string; problem: 'missing' | 'size'; expected: number; actual?: number }>;
};

const VERIFY_PAGE = 512;
const MAX_PROBLEMS_LISTED = 1000;

/** Temp files left in incoming/ by a crash were never acknowledged: remove them. */
export async function removeLeftovers(incomingDir: string, log: Logger): Promise<number> {
  let removed = 0;
  for (const entry of await fsp.readdir(incomingDir, { withFileTypes: true })) {
    await fsp.rm(path.join(incomingDir, entry.name), { recursive: true, force: true });
    removed++;
  }
  if (removed > 0) log.warn({ removed }, 'removed unacknowledged temp files left by an earlier run');
  return removed;
}

/**
 * Check every row against its file, a page at a time. A row whose file is missing (or has the wrong
 * size) is an acknowledged instance that something outside the router removed or damaged. We keep the
 * row: dropping it would erase the evidence and orphan its queue entries; it is logged at error level,
 * counted in the report, and forwarding it will fail loudly.
 */
export async function verifyIndex(instances: Database<InstanceRecord, string>, dir: string, report: SpoolStartupReport, log: Logger): Promise<void> {
  let start: string | undefined;
  for (;;) {
    const page: Array<{ key: string; path: string; size: number }> = [];
    for (const { key, value } of instances.getRange({ start, limit: VERIFY_PAGE + (start === undefined ? 0 : 1) })) {
      if (key !== start) page.push({ key, path: value.path, size: value.size });
    }
    if (page.length === 0) return;
    start = page[page.length - 1].key;
    await Promise.all(
      page.map(async (row) => {
        report.checked++;
        const actual = await fsp.stat(path.join(dir, row.path)).then(
          (s) => s.size,
          () => undefined,
        );
        if (actual === row.size) return;
        const problem = actual === undefined ? 'missing' : 'size';
        if (problem === 'missing') report.missing++;
        else report.sizeMismatch++;
        if (report.problems.length < MAX_PROBLEMS_LISTED) {
          report.problems.push({ sopInstanceUid: row.key, path: row.path, problem, expected: row.size, actual });
        }
        log.error(
          { sopInstanceUid: row.key, path: row.path, expected: row.size, actual },
          `ACKNOWLEDGED INSTANCE ${problem === 'missing' ? 'FILE MISSING' : 'FILE SIZE WRONG'}: kept in the index`,
        );
      }),
    );
  }
}

/**
 * Files under instances/ that no index row points to. They are never acknowledged instances: a crash
 * between rename and index commit, or between a duplicate's commit and the removal of the file it
 * replaced. Walks the whole tree and holds every indexed path: for maintenance, not the hot path.
 */
export async function findOrphans(instances: Database<InstanceRecord, string>, dir: string): Promise<string[]> {
  const indexed = new Set<string>();
  for (const { value } of instances.getRange()) indexed.add(value.path);
  const orphans: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) await walk(child);
      else if (!indexed.has(child)) orphans.push(child);
    }
  };
  await walk('instances');
  return orphans;
}
