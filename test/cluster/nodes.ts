// Router nodes of one cluster for the tests of issue 17: each a real router process (startRouter) with
// a `cluster` section on a private PostgreSQL, its spool under <shared>/nodes/<name> (storage: shared),
// forwarding everything to one DCMTK storescp.
import type { ExecutionContext } from 'ava';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres } from '../helpers/postgres.ts';
import type { PostgresServer } from '../helpers/postgres.ts';
import { freePort, run, startRouter, startStorescp, tempDir } from '../helpers/processes.ts';
import type { RouterUnderTest, Started } from '../helpers/processes.ts';

export type Node = RouterUnderTest & { name: string; inspectPort: number };

/**
 * What a cluster test starts from, stopped at its end: a private PostgreSQL, the DEST storescp writing to
 * `out` (verbose: its log gives the order instances arrived in, storedOrder), and the shared spool folder.
 */
export async function clusterWithDestination(t: ExecutionContext): Promise<{ pgServer: PostgresServer; out: string; dest: Awaited<ReturnType<typeof startStorescp>>; shared: string }> {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const out = tempDir('dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST', extraArgs: ['-v'] });
  t.teardown(dest.stop);
  return { pgServer, out, dest, shared: tempDir('shared-') };
}

export function forwardAllRules(peer: string): string {
  const rules = tempDir('rules-');
  writeFileSync(join(rules, 'all.yaml'), `rules:\n  - name: all\n    then: { forward: [${peer}] }\n`);
  return rules;
}

export async function startNode(name: string, o: { pg: PostgresServer; shared: string; rulesDir: string; peers: Record<string, unknown>[]; storage?: 'shared' | 'local'; leaseSeconds?: number; port?: number; listener?: Record<string, unknown> }): Promise<Node> {
  const inspectPort = await freePort();
  const router = await startRouter({
    dataDir: join(o.shared, 'nodes', name),
    peers: o.peers,
    rulesDir: o.rulesDir,
    ...(o.port !== undefined ? { port: o.port } : {}),
    ...(o.listener ? { listener: o.listener } : {}),
    // On a port chosen here: the tests read /api/cluster from it.
    inspect: { bind: '127.0.0.1', port: inspectPort },
    extra: { cluster: { nodeName: name, postgres: { url: o.pg.url }, storage: o.storage ?? 'shared', leaseSeconds: o.leaseSeconds ?? 3 } },
  });
  return { ...router, name, inspectPort };
}

/** The SOP Instance UIDs storescp stored, in the order it stored them (its -v log). */
export function storedOrder(scp: Started): string[] {
  return [...scp.output().matchAll(/storing DICOM file: .*?[A-Z]+\.([0-9.]+)\s*$/gm)].map((m) => m[1]);
}

export function filesAt(dir: string): Set<string> {
  return new Set(existsSync(dir) ? readdirSync(dir).map((f) => f.replace(/^[A-Z]+\./, '')) : []);
}

/** DCMTK storescu to a node; resolves with its result (exit code 0: every instance acknowledged). */
export function storescu(node: { port: number; aeTitle: string }, files: string[]) {
  return run('storescu', ['-aec', node.aeTitle, '127.0.0.1', String(node.port), ...files]);
}

export async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs: number, explain: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached after ${timeoutMs} ms\n${explain()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function clusterApi(node: Node): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${node.inspectPort}/api/cluster`);
  if (!res.ok) throw new Error(`/api/cluster: HTTP ${res.status}`);
  return res.json();
}
