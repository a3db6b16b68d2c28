// DESIGN property 1: an acknowledged instance is never lost. A sender streams instances, the router
// is killed with SIGKILL at a random moment, restarted on the same data folder: every instance the
// sender saw acknowledged (C-STORE-RSP 0000) is indexed, and its file is intact.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { Spool } from '../../actors/ingest/spool.ts';
import { datasetOf, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { REPO, startProcess, startRouter, tempDir, waitForOutput } from '../helpers/processes.ts';

for (const round of [1, 2, 3]) {
  test.serial(`SIGKILL mid-stream (round ${round}): every acknowledged instance survives, intact and indexed`, async (t) => {
    const src = tempDir();
    const files = writeDataset(join(src, 'ct'), { count: 150, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 65536 });
    const router = await startRouter();
    t.teardown(router.stop);
    const sender = startProcess(process.execPath, [join(REPO, 'scripts/router.ts'), 'send', `${router.aeTitle}@127.0.0.1:${router.port}`, src]);
    t.teardown(sender.stop);
    // Let some instances through, then kill at a random moment.
    await waitForOutput(sender, 'OK ');
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
    router.child.kill('SIGKILL');
    await new Promise<void>((r) => (sender.child.exitCode !== null ? r() : sender.child.once('exit', () => r())));
    const acknowledged = sender
      .output()
      .split('\n')
      .filter((l) => /^OK .*0x0000 Success/.test(l))
      .map((l) => l.trim().split(/\s+/).at(-1)!);
    t.true(acknowledged.length > 0, 'the sender saw some acknowledgements before the kill');

    // Restart on the same data folder: it must come up, and everything acknowledged is there.
    const again = await startRouter({ dataDir: router.dataDir });
    await again.stop();
    const spool = await Spool.open({ dir: router.dataDir });
    t.teardown(() => spool.close());
    for (const path of acknowledged) {
      const sent = await readPart10File(path);
      const record = spool.get(sent.sopInstanceUid);
      t.truthy(record, `${path} was acknowledged but is not indexed`);
      if (!record) continue;
      const stored = readFileSync(join(router.dataDir, record.path));
      t.is(record.size, stored.length);
      t.true(Buffer.from(datasetOf(stored)).equals(Buffer.from(datasetOf(readFileSync(path)))), `${path} is not intact`);
    }
    t.log(`${acknowledged.length} of ${files.length} acknowledged before SIGKILL; ${spool.count()} indexed`);
  });
}
