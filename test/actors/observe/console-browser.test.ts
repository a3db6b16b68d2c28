// The operations console (the inspector's front page) in headless Chromium (Debian's chromium, driven
// by playwright-core), after the test provokes each state: a peer that refuses connections (its words
// go from "retrying in N s (attempt k of 5): connection refused" to "circuit open until … after 5
// failures", with the alert), an association rejected (the rejections panel, with reason, calling AE
// and address), a rule file refused (health shows the located error, with the alert), the study with
// its destination waiting, then purged (the purge asks to confirm). Screenshots are kept under
// test-artifacts/ (the folder is printed). uPlot is served by the router itself.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { newUid } from '../../helpers/dicom-files.ts';
import { send } from '../../helpers/in-process-router.ts';
import { DCMTK_ENV, freePort, REPO, run } from '../../helpers/processes.ts';
import { stringify } from 'yaml';
import { inspectedRouter } from '../../helpers/inspected-router.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = join(REPO, 'test-artifacts');

const RULES = `rules:
  - name: everything-to-pacs
    then: { forward: [PACS] }
`;

test.serial('the console shows a peer down in words with its alert, a rejection, a refused rule file, the study per destination; purge confirms', async (t) => {
  t.true(existsSync(CHROMIUM), 'Debian chromium is needed: apt-get install -y chromium');
  mkdirSync(ARTIFACTS, { recursive: true });
  t.log(`screenshots in ${ARTIFACTS}`);
  // Nothing listens on PACS's port: every connection is refused. A 1 s backoff reaches the circuit
  // threshold (5 consecutive failures) in a few seconds.
  const pacsPort = await freePort();
  const { dir, router, server, port, get } = await inspectedRouter(t, {
    rules: RULES,
    peers: [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: pacsPort, retry: { attempts: 10, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 5 } }],
  });
  const browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1400, height: 1200 } });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(server.url);
  // The charting library came from the router (no CDN): uPlot drew its canvases.
  await page.waitForSelector('#chart-5m canvas');
  await page.waitForSelector('#chart-1h canvas');
  t.is(await page.locator('#health-rules td', { hasText: 'everything-to-pacs' }).count(), 1, 'the rule in force is listed');

  // Two instances of one study: stored, queued for PACS, which refuses.
  const studyUid = newUid();
  mkdirSync(join(dir, 'in'));
  await send(port, join(dir, 'in'), [1, 2].map((n) => ({ studyInstanceUid: studyUid, modality: 'MR', instanceNumber: n, patientName: 'DOE^JANE', patientId: 'PID-4711' })), 'MRI_3T');

  const peer = page.locator('[data-peer="PACS"]');
  await page.waitForSelector('[data-peer="PACS"][data-condition="retrying"]', { timeout: 15_000 });
  t.regex((await peer.locator('.peer-words').textContent()) ?? '', /^retrying in \d+ s \(attempt [2-5] of 5\): connection refused$/);
  await page.screenshot({ path: join(ARTIFACTS, 'console-peer-retrying.png'), fullPage: true });

  await page.waitForSelector('[data-peer="PACS"][data-condition="circuit-open"]', { timeout: 30_000 });
  t.regex((await peer.locator('.peer-words').textContent()) ?? '', /^circuit open until \d\d:\d\d:\d\d after 5 failures: connection refused$/);
  await page.waitForSelector('#alerts [data-alert="circuit-open"][data-subject="PACS"]', { timeout: 10_000 });
  t.regex((await peer.textContent()) ?? '', /queue 2 waiting, oldest \d+ s/);

  // The study: modality, count, calling AE, PACS waiting; patient data masked.
  const study = page.locator(`[data-study="${studyUid}"]`);
  await study.waitFor();
  const cells = await study.locator('td').allTextContents();
  t.is(cells[3], 'MR');
  t.regex(cells[4], /^2 \(/);
  t.regex(cells[5], /^MRI_3T @ 127\.0\.0\.1/);
  t.regex(await study.locator('[data-destination="PACS"]').textContent() ?? '', /PACS: 2 waiting/);
  await page.screenshot({ path: join(ARTIFACTS, 'console-circuit-open.png'), fullPage: true });

  // The waiting items' true next attempt is the circuit's end, not their own time (already past).
  const queues = (await (await get('/api/queues?peer=PACS')).json()) as { items: { nextAttempt: { at: string; dueNow: boolean; heldBy?: string } }[] }[];
  t.is(queues[0].items.length, 2);
  for (const i of queues[0].items) {
    t.is(i.nextAttempt.heldBy, 'circuit-open');
    t.true(Date.parse(i.nextAttempt.at) > Date.now());
  }
  t.regex((await peer.textContent()) ?? '', /next attempt \d+:\d\d:\d\d/);
  // `router queue ls` beside the running router asks its inspector, and says the same.
  const configFile = join(dir, 'cli.yaml');
  writeFileSync(configFile, stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' }],
    peers: [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: pacsPort }],
    routing: { rulesDir: join(dir, 'rules') },
    inspect: { enabled: true, port: server.port },
  }));
  const ls = await run(process.execPath, [join(REPO, 'scripts/router.ts'), 'queue', 'ls', 'PACS', '--config', configFile]);
  t.is(ls.code, 0, ls.stderr);
  const lines = ls.stdout.split('\n').filter((l) => /^\s+PACS:\d+\s+pending/.test(l));
  t.is(lines.length, 2, ls.stdout);
  for (const l of lines) {
    const at = /next at (\S+) \(peer circuit open\)/.exec(l);
    t.truthy(at, l);
    t.true(Date.parse(at![1]) > Date.now() - 1000, l);
  }

  // The alert is a gauge in /metrics.
  t.regex(await (await get('/metrics')).text(), /dicom_router_alert\{kind="circuit-open",subject="PACS"\} 1/);

  // Retry wakes the peer at once, open circuit included: one more connection attempt (refused again).
  const failures = async () => Number(/dicom_router_peer_association_failures_total\{peer="PACS",reason="connection-refused"\} (\d+)/.exec(await (await get('/metrics')).text())?.[1] ?? 0);
  const before = await failures();
  await peer.locator('button[data-action="retry"]').click();
  for (let i = 0; i < 100 && (await failures()) === before; i++) await new Promise((r) => setTimeout(r, 100));
  t.is(await failures(), before + 1, 'Retry made one attempt at once');

  // A rejection: a called AE title the listener does not answer to.
  const echo = spawn('echoscu', ['-aec', 'NOT_ME', '-aet', 'STRANGER', '127.0.0.1', String(port)], { env: DCMTK_ENV, stdio: 'ignore' });
  await new Promise((resolve) => echo.once('exit', resolve));
  const rejection = page.locator('#rejections tr[data-rejection="called-ae-not-recognized"]');
  await rejection.first().waitFor({ timeout: 10_000 });
  const rj = await rejection.first().locator('td').allTextContents();
  t.is(rj[1], 'called AE not recognized');
  t.is(rj[2], 'STRANGER');
  t.is(rj[3], 'NOT_ME');
  t.regex(rj[4], /^127\.0\.0\.1:\d+$/);
  t.regex((await page.textContent('#rejections')) ?? '', /called AE not recognized: 1/);
  await page.screenshot({ path: join(ARTIFACTS, 'console-rejection.png'), fullPage: true });

  // A rule file refused: health shows its located error, the old rule stays in force, and an alert.
  writeFileSync(join(dir, 'rules', 'r.yaml'), 'rules:\n  - name: broken\n    then: { forward: [NOWHERE] }\n');
  t.false(router.rules.reload());
  await page.waitForSelector('#rules-refused', { timeout: 10_000 });
  t.regex((await page.textContent('#rules-refused')) ?? '', /r\.yaml:\d+:\d+/);
  t.is(await page.locator('#health-rules td', { hasText: 'everything-to-pacs' }).count(), 1, 'the previous rule stays in force');
  await page.waitForSelector('#alerts [data-alert="rules-refused"]', { timeout: 10_000 });
  await page.screenshot({ path: join(ARTIFACTS, 'console-rules-refused.png'), fullPage: true });

  // Purge asks to confirm; dismissed, nothing happens; accepted, the queue is empty.
  let asked = 0;
  page.once('dialog', (d) => {
    asked++;
    void d.dismiss();
  });
  await peer.locator('button[data-action="purge"]').click();
  t.is(asked, 1);
  t.is(router.queue.depth('PACS').pending, 2, 'dismissed: nothing purged');
  page.once('dialog', (d) => {
    asked++;
    void d.accept();
  });
  await peer.locator('button[data-action="purge"]').click();
  t.is(asked, 2);
  await page.waitForFunction(`(document.querySelector('[data-peer="PACS"]')?.textContent ?? '').includes('queue 0 waiting')`, undefined, { timeout: 10_000 });
  t.is(router.queue.depth('PACS').pending, 0);

  const html = await page.content();
  writeFileSync(join(ARTIFACTS, 'console.html'), html);
  t.false(html.includes('DOE^JANE'), 'no patient name on the page');
  t.false(html.includes('PID-4711'), 'no patient ID on the page');
});
