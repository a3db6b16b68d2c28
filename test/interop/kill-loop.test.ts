// Twenty SIGKILLs at random moments while instances flow in (router send) and out (to a DCMTK
// storescp): after every restart the index is consistent with the files, and in the end every
// acknowledged instance is indexed and has reached the destination.
import test from 'ava';
import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { REPO, startProcess, startRouter, startStorescp, tempDir, waitForOutput } from '../helpers/processes.ts';

const ROUNDS = 20;

test.serial(`${ROUNDS} SIGKILL restarts with traffic in and out: nothing acknowledged is lost`, async (t) => {
  const out = tempDir();
  const dest = await startStorescp(out, { aeTitle: 'DEST' });
  t.teardown(dest.stop);
  const rules = tempDir('rules-');
  writeFileSync(join(rules, 'all.yaml'), 'rules:\n  - name: all\n    then: { forward: [DEST] }\n');
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, retry: { attempts: 100, initialBackoffSeconds: 0.1, maxBackoffSeconds: 0.5, jitter: 0 } }];
  const dataDir = join(tempDir(), 'data');
  const acknowledged: string[] = [];
  let port: number | undefined;
  for (let round = 1; round <= ROUNDS; round++) {
    const router = await startRouter({ dataDir, peers, rulesDir: rules, port });
    port = router.port;
    // The spool checked its index against the files at start: nothing missing, nothing of the wrong size.
    await waitForOutput(router, '"msg":"spool open"');
    t.regex(router.output(), /"missing":0,"sizeMismatch":0/, `round ${round}: index and files disagree`);
    const batch = writeDataset(join(tempDir(), `r${round}`), { count: 15, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 16384 });
    const sender = startProcess(process.execPath, [join(REPO, 'scripts/router.ts'), 'send', `DICOM_ROUTER@127.0.0.1:${router.port}`, ...batch]);
    // Kill at a random moment once instances are flowing (sometimes mid-receive, sometimes mid-forward).
    await waitForOutput(sender, 'OK ', 15_000).catch(() => {});
    await new Promise((r) => setTimeout(r, Math.random() * 300));
    router.child.kill('SIGKILL');
    await new Promise<void>((r) => (sender.child.exitCode !== null || sender.child.signalCode !== null ? r() : sender.child.once('exit', () => r())));
    for (const line of sender.output().split('\n')) if (/^OK .*0x0000/.test(line)) acknowledged.push(line.trim().split(/\s+/).at(-1)!);
    await router.stop();
  }
  t.true(acknowledged.length > 0, 'some instances were acknowledged between the kills');
  // A last, undisturbed run drains the queue.
  const final = await startRouter({ dataDir, peers, rulesDir: rules, port });
  t.teardown(final.stop);
  const wanted = await Promise.all(acknowledged.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  const atDest = () => new Set(readdirSync(out).map((f) => basename(f).replace(/^[A-Z]+\./, '')));
  const deadline = Date.now() + 60_000;
  while (!wanted.every((uid) => atDest().has(uid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const missing = wanted.filter((uid) => !atDest().has(uid));
  t.deepEqual(missing, [], 'acknowledged instances that never reached the destination');
  t.log(`${ROUNDS} kills, ${acknowledged.length} instances acknowledged, all delivered`);
});
