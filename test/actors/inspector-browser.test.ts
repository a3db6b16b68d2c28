// The live inspector page in headless Chromium (Debian's chromium, driven by playwright-core): while
// a slowed storescu sends, the association appears with its upper-layer state, selecting it shows its
// state diagram, context and events; it disappears when released; PHI stays masked. A screenshot is
// kept in test-artifacts/inspector.png.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { DCMTK_ENV, REPO } from '../helpers/processes.ts';
import { slowProxy } from '../helpers/slow-proxy.ts';
import { inspectedRouter } from '../helpers/inspected-router.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test('the page shows the association live while storescu sends, then not; PHI is masked', async (t) => {
  t.true(existsSync(CHROMIUM), 'Debian chromium is needed: apt-get install -y chromium');
  const { dir, router, server } = await inspectedRouter(t);
  const proxy = await slowProxy(router.ports.get('main')!, 25);
  t.teardown(() => proxy.close());

  const browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(server.url);
  await page.waitForSelector('#conn.up');
  await page.waitForSelector('[data-actor-id="listener:main"][data-state="listening"]');

  const files = writeDataset(join(dir, 'in'), { count: 8, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 65536, patientName: 'DOE^JANE', patientId: 'PID-4711' });
  const sender = spawn('storescu', ['-aec', 'DICOM_ROUTER', '-aet', 'SLOW_CT', '127.0.0.1', String(proxy.port), ...files], { env: DCMTK_ENV, stdio: 'ignore' });
  const sent = new Promise<number | null>((resolve) => sender.once('exit', (code) => resolve(code)));

  // The association appears, established (PS3.8 Sta6), with its AE titles.
  const assoc = page.locator('[data-actor-id^="assoc-"][data-state="Sta6"]');
  await assoc.first().waitFor({ timeout: 10_000 });
  t.regex((await assoc.first().textContent()) ?? '', /SLOW_CT → DICOM_ROUTER/);
  await assoc.first().click();
  await page.waitForSelector('#context');
  await page.waitForSelector('[data-state-path="Sta6"].st.active');
  t.regex((await page.textContent('#detail')) ?? '', /ASSOCIATE_RQ_RECEIVED/);
  mkdirSync(join(REPO, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(REPO, 'test-artifacts/inspector.png'), fullPage: true });

  t.is(await sent, 0);
  // Released: gone from the tree.
  await page.locator('[data-actor-id^="assoc-"]').first().waitFor({ state: 'detached', timeout: 10_000 });
  await page.waitForSelector('text=This actor has ended.');
  const html = await page.content();
  t.false(html.includes('DOE^JANE'));
  t.false(html.includes('PID-4711'));
  writeFileSync(join(REPO, 'test-artifacts/inspector-after.html'), html);
});
