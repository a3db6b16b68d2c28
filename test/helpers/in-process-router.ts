// The router in-process with peers and a rules folder, and a sender, for forwarding tests.
import type { ExecutionContext } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { startRouter } from '../../actors/router.ts';
import { ScuAssociation } from '../../actors/net/scu.ts';
import { parseConfig } from '../../config/config.ts';
import { makeInstance, SOP, TS } from './dicom-files.ts';
import type { InstanceOptions } from './dicom-files.ts';
import { tempDir } from './processes.ts';

export const silent = pino({ level: 'silent' });

export async function eventually(t: ExecutionContext, what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return void t.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function routerWith(peers: Record<string, unknown>[], rules: string, opts: { logger?: import('pino').Logger; storageDir?: string; listener?: Record<string, unknown>; config?: Record<string, unknown>; port?: number } = {}) {
  const dir = tempDir();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'rules.yaml'), rules);
  const config = parseConfig(
    stringify({
      storage: { dir: opts.storageDir ?? join(dir, 'data') },
      listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1', ...opts.listener }],
      peers,
      routing: { rulesDir },
      ...opts.config,
    }),
    join(dir, 'router.yaml'),
  );
  // A given port: a peer configured with it reaches the router again after a restart.
  config.listeners[0].port = opts.port ?? 0;
  const running = await startRouter(config, { logger: opts.logger ?? silent });
  return { ...running, port: running.ports.get('main')!, dir, rulesDir };
}

/** C-STORE generated instances to the router over one association; the SOP Instance UIDs. */
export async function send(port: number, dir: string, specs: Partial<InstanceOptions>[], callingAeTitle = 'MODALITY'): Promise<string[]> {
  const files = specs.map((s, i) => {
    const path = join(dir, `in-${Date.now()}-${i}.dcm`);
    writeFileSync(path, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, ...s }));
    return path;
  });
  const parsed = await Promise.all(files.map((f) => readPart10File(f)));
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port, callingAeTitle, calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }], logger: silent,
  });
  for (const f of parsed) {
    const outcome = await scu.store(f);
    if (outcome.status !== 0) throw new Error(`router answered ${outcome.status} ${outcome.errorComment}`);
  }
  await scu.release();
  return parsed.map((p) => p.sopInstanceUid);
}

/** C-STORE one Part-10 file as it is (its own SOP class and transfer syntax), on an association of its own; the router's answer. */
export async function storeFile(port: number, path: string, callingAeTitle = 'MODALITY') {
  const file = await readPart10File(path);
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port, callingAeTitle, calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: file.sopClassUid, transferSyntaxes: [file.transferSyntaxUid] }], logger: silent,
  });
  const outcome = await scu.store(file);
  await scu.release();
  return outcome;
}
