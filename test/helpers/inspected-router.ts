// An in-process router with its inspector server on a free loopback port, torn down with the test:
// the setup the inspector, metrics, browser and completion tests share.
import type { ExecutionContext } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createInspection } from '../../actors/observe/inspector.ts';
import type { JournalIo } from '../../actors/ingest/journal.ts';
import type { InspectorServer } from '../../actors/observe/inspector.ts';
import { startRouter } from '../../actors/router.ts';
import { parseConfig } from '../../config/config.ts';
import { silent } from './in-process-router.ts';
import { tempDir } from './processes.ts';

export type InspectedRouterOptions = {
  /** Text of the one rule file (rules/r.yaml); none = no rules. */
  rules?: string;
  peers?: Record<string, unknown>[];
  /** Merged into the one listener ('main', AE DICOM_ROUTER). */
  listener?: Record<string, unknown>;
  /** Merged into `inspect` (enabled, port 0). */
  inspect?: Record<string, unknown>;
  /** Merged into `storage` (fsync off unless said). */
  storage?: Record<string, unknown>;
  /** The journal's file I/O (faults). */
  journalIo?: Partial<JournalIo>;
};

export async function inspectedRouter(t: ExecutionContext, opts: InspectedRouterOptions = {}) {
  const dir = tempDir();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  if (opts.rules !== undefined) writeFileSync(join(rulesDir, 'r.yaml'), opts.rules);
  const config = parseConfig(
    stringify({
      storage: { dir: join(dir, 'data'), fsync: false, ...opts.storage },
      listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1', ...opts.listener }],
      ...(opts.peers ? { peers: opts.peers } : {}),
      routing: { rulesDir },
      inspect: { enabled: true, port: 0, ...opts.inspect },
    }),
    join(dir, 'router.yaml'),
  );
  config.listeners[0].port = 0;
  const inspection = createInspection(config, silent);
  const router = await startRouter(config, { logger: silent, inspect: inspection.inspect, watchRules: false, ...(opts.journalIo ? { journalIo: opts.journalIo } : {}) });
  const server = (await inspection.attach(router)) as InspectorServer; // undefined when inspect.enabled is false
  t.teardown(async () => {
    await inspection.stop();
    await router.stop(0);
  });
  const get = async (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });
  const json = async (path: string): Promise<any> => (await get(path)).json();
  return { dir, router, inspection, server, get, json, port: router.ports.get('main')! };
}
