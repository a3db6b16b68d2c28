// The actor tree view of the console page (#actors) in headless Chromium (Debian's chromium, driven by playwright-core): while
// a slowed storescu sends, the association appears with its upper-layer state, selecting it shows its
// state diagram, context and events; it disappears when released; PHI stays masked. A screenshot is
// kept in test-artifacts/inspector.png. A study held for completion is listed with a countdown, and a
// prefetch job waiting to retry (its archive refuses connections) with its steps
// (test-artifacts/inspector-completion-prefetch.png).
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { newUid, SOP, TS, writeDataset } from '../../helpers/dicom-files.ts';
import { send } from '../../helpers/in-process-router.ts';
import { DCMTK_ENV, freePort, REPO } from '../../helpers/processes.ts';
import { slowProxy } from '../../helpers/slow-proxy.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test.serial('the page shows the association live while storescu sends, then not; PHI is masked', async (t) => {
  t.true(existsSync(CHROMIUM), 'Debian chromium is needed: apt-get install -y chromium');
  const { dir, router, server } = await inspectedRouter(t);
  const proxy = await slowProxy(router.ports.get('main')!, 25);
  t.teardown(() => proxy.close());

  const browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${server.url}/#actors`);
  await page.waitForSelector('#conn.up');
  await page.waitForSelector('[data-actor-id="listener:main"][data-state="listening"]');

  const files = writeDataset(join(dir, 'in'), { count: 8, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 65536, patientName: 'DOE^JANE', patientId: 'PID-4711' });
  const sender = spawn('storescu', ['-aec', 'DICOM_ROUTER', '-aet', 'SLOW_CT', '127.0.0.1', String(proxy.port), ...files], { env: DCMTK_ENV, stdio: 'ignore' });
  const sent = new Promise<number | null>((resolve) => sender.once('exit', (code) => resolve(code)));

  // The association appears, established (PS3.8 Sta6), with its AE titles.
  const assoc = page.locator('[data-actor-id^="assoc-"][data-state="Sta6"]');
  await assoc.first().waitFor({ timeout: 10_000 });
  t.regex((await assoc.first().textContent()) ?? '', /SLOW_CT → DICOM_ROUTER/);
  // The tree is re-rendered on every push (auditTime 100 ms), which can detach the node under a
  // pointer click: click it inside the page, in one step.
  await page.waitForFunction(`(() => { const el = document.querySelector('[data-actor-id^="assoc-"][data-state="Sta6"]'); if (el) el.click(); return el !== null; })()`);
  await page.waitForSelector('#context');
  // The diagram and the events come from one fetch: checked together, before the association may end.
  await page.waitForFunction(`(() => document.querySelector('[data-state-path="Sta6"].st.active') !== null && (document.getElementById('detail')?.textContent ?? '').includes('ASSOCIATE_RQ_RECEIVED'))()`);
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

// Both sections need the one rule file: the prefetch rule goes on (continue) to the held forward.
const RULES = `rules:
  - name: priors
    continue: true
    then:
      prefetch: { archive: ARCHIVE, destination: WS }
  - name: study
    trigger: { per: study, quietSeconds: 600 }
    then: { forward: [PACS] }
`;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('the page lists a study waiting for completion with its countdown, and a prefetch job with its steps', async (t) => {
  // Nothing listens on these ports: the forward is held 600 s anyway, the archive refuses every
  // connection and its next attempt is minutes away, so the job stays in waitingToRetry.
  const [archivePort, pacsPort] = [await freePort(), await freePort()];
  const { dir, server, port } = await inspectedRouter(t, {
    rules: RULES,
    peers: [
      { name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: '127.0.0.1', port: archivePort, retry: { attempts: 5, initialBackoffSeconds: 300, maxBackoffSeconds: 300 }, timeouts: { connectSeconds: 2, dimseSeconds: 5 } },
      { name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: pacsPort },
    ],
  });
  const browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1400, height: 1000 } });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${server.url}/#actors`);
  await page.waitForSelector('#conn.up');

  const [studyUid, seriesUid] = [newUid(), newUid()];
  mkdirSync(join(dir, 'in'));
  await send(port, join(dir, 'in'), [1, 2, 3].map((n) => ({ studyInstanceUid: studyUid, seriesInstanceUid: seriesUid, modality: 'CT', instanceNumber: n, patientName: 'DOE^JANE', patientId: 'PID-4711' })));

  // Waiting for completion: rule, study UID, instances, seconds left.
  const row = page.locator('#completions tr[data-completion]');
  await row.first().waitFor({ timeout: 10_000 });
  // The list is refetched every 2 s: it may first show the group before its third instance.
  await page.waitForFunction(`(document.querySelector('#completions tr[data-completion] td:nth-child(3)')?.textContent ?? '').startsWith('3 in 1 series')`, undefined, { timeout: 10_000 });
  t.is(await row.count(), 1);
  const cells = await row.first().locator('td').allTextContents();
  t.regex(cells[0], /^study\b/);
  t.true(cells[1].includes(studyUid), cells[1]);
  t.regex(cells[2], /^3 in 1 series \(CT\)/);
  const secondsLeft = async () => {
    const text = (await row.first().locator('td[data-seconds-left]').textContent()) ?? '';
    const m = /^(\d+) s/.exec(text);
    t.truthy(m, `a countdown, not '${text}'`);
    return Number(m?.[1]);
  };
  const first = await secondsLeft();
  t.true(first > 500 && first <= 600, String(first));

  // The prefetch job: planned, tried once (connection refused), now waiting to retry.
  const job = page.locator('#prefetch [data-prefetch-job][data-state="waitingToRetry"]');
  await job.first().waitFor({ timeout: 15_000 });
  t.is(await page.locator('#prefetch [data-prefetch-job]').count(), 1);
  t.regex((await job.first().locator('.state').first().textContent()) ?? '', /waitingToRetry/);
  const steps = page.locator('#prefetch [data-prefetch-job] ol li');
  await steps.filter({ hasText: /waitingToRetry \(attempt 1 failed: connection to 127\.0\.0\.1:\d+ failed/ }).first().waitFor({ timeout: 10_000 });
  const lines = await steps.allTextContents();
  t.regex(lines[0], new RegExp(`planned by rule 'priors' for new study ${studyUid.replace(/\./g, '\\.')}`));
  t.true(lines.some((l) => /\bquerying$/.test(l)), lines.join('\n'));

  // A few seconds later the countdown has gone down (the page counts every second, refetches every 2 s).
  await pause(2500);
  const second = await secondsLeft();
  t.true(second < first, `${second} < ${first}`);

  mkdirSync(join(REPO, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(REPO, 'test-artifacts/inspector-completion-prefetch.png'), fullPage: true });

  // The console's recent studies: PACS held for completion, the prefetch job with its state.
  await page.goto(server.url);
  const study = page.locator(`#studies [data-study="${studyUid}"]`);
  await study.waitFor({ timeout: 10_000 });
  t.regex((await study.locator('[data-destination="PACS"]').textContent()) ?? '', /^PACS: 3 held for completion$/);
  t.regex((await study.locator('[data-prefetch]').textContent()) ?? '', /^ARCHIVE → WS: waitingToRetry/);
  await page.screenshot({ path: join(REPO, 'test-artifacts/console-held-prefetch.png'), fullPage: true });
  const html = await page.content();
  t.false(html.includes('DOE^JANE'), 'no patient name on the page');
  t.false(html.includes('PID-4711'), 'no patient ID on the page');
});
