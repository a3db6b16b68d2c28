// The console's Retrievals section (issue 16): while a retrieve-through runs, GET /api/console lists it
// (requester, destination, study, the archive's counts so far, state) and the page shows it in headless
// Chromium (Debian's chromium, playwright-core); a screenshot is kept under test-artifacts/. The archive
// is scripted: it answers the router's C-MOVE with a pending response a second, for as long as the test
// needs; then the requester goes away, the router cancels upstream, and the job leaves the page.
import test from 'ava';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { newUid } from '../../helpers/dicom-files.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';
import { DCMTK_ENV, freePort, REPO, startProcess } from '../../helpers/processes.ts';
import { scriptedQrScp } from '../../helpers/scripted-qr-scp.ts';
import { CommandField } from '../../../protocol/dimse.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = join(REPO, 'test-artifacts');

test('a retrieve-through under way is listed in /api/console and on the page: requester, destination, study, counts, state', async (t) => {
  t.true(existsSync(CHROMIUM), 'Debian chromium is needed: apt-get install -y chromium');
  mkdirSync(ARTIFACTS, { recursive: true });
  // Pending responses with counts, one a second for up to 2 minutes (no instance ever comes: the counts are the archive's).
  const pending = Array.from({ length: 120 }, (_, i) => ({ status: 0xff00, delayMs: 1000, counts: { remaining: 120 - i, completed: i, failed: 0, warning: 0 } }));
  const archive = await scriptedQrScp((rq) => (rq.CommandField === CommandField.C_MOVE_RQ ? [...pending, { status: 0x0000, counts: { completed: 0, failed: 0, warning: 0 } }] : [{ status: 0x0000 }]));
  t.teardown(() => archive.close());
  const { dir, server, port, json } = await inspectedRouter(t, {
    peers: [
      { name: 'ARCH', aeTitle: 'ARCH', host: '127.0.0.1', port: archive.port, timeouts: { connectSeconds: 3, dimseSeconds: 20 } },
      { name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: await freePort() },
    ],
    listener: { queryRetrieve: { sources: ['ARCH'], move: 'retrieve-through' } },
  });
  const study = newUid();
  const move = startProcess('movescu', ['-S', '-aet', 'VIEWER', '-aec', 'DICOM_ROUTER', '-aem', 'WS', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study}`, '127.0.0.1', String(port)], { env: DCMTK_ENV });
  t.teardown(() => move.stop());

  type Shown = { id: string; requester: string; destination: string; level: string; uid: string; sources: string[]; state: string; upstream: { completed: number; remaining?: number }; associations: string[] };
  let shown: Shown | undefined;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !(shown && shown.upstream.completed >= 1)) {
    shown = ((await json('/api/console')) as { retrievals: Shown[] }).retrievals[0];
    if (!shown || shown.upstream.completed < 1) await new Promise((r) => setTimeout(r, 100));
  }
  t.like(shown, { requester: 'VIEWER', destination: 'WS', level: 'STUDY', uid: study, sources: ['ARCH'], state: 'retrieving' }, move.output());
  t.true((shown?.upstream.remaining ?? 0) > 0, 'the archive\'s counts so far');
  t.deepEqual(shown?.associations, ['association:ARCH#1'], 'its upstream association is its child');

  const browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1400, height: 1000 } });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(server.url);
  const row = page.locator(`[data-retrieval="${shown!.id}"]`);
  await row.waitFor({ timeout: 30_000 });
  const text = (await row.textContent()) ?? '';
  for (const part of ['VIEWER', 'WS', study, 'ARCH', 'retrieving']) t.true(text.includes(part), `${part} in: ${text}`);
  t.regex(text, /\d+ in, 0 failed, \d+ to come/);
  await page.locator('#retrievals').screenshot({ path: join(ARTIFACTS, 'console-retrievals.png') });
  t.log(`screenshot: ${join(ARTIFACTS, 'console-retrievals.png')}`);
  // The requester goes away: the router cancels the archive's move, the job ends and leaves the page.
  await move.stop();
  await page.waitForSelector('#retrievals p.empty', { timeout: 30_000 });
  t.true(archive.cancels.length > 0, 'the C-CANCEL went to the archive');
  t.is(((await json('/api/console')) as { retrievals: unknown[] }).retrievals.length, 0);
});
