// TLS against real peers: DCMTK echoscu/storescu with +tls on TLS listeners while plain clients use
// the plain listener of the same router; the openssl s_client matrix of each profile (every allowed
// suite accepted; TLS 1.0/1.1, CBC, RSA key exchange, other TLS 1.3 suites, no client certificate
// refused); crossing plain and TLS ports; AE-title bindings; forwarding to DCMTK storescp +tls; and
// `router certs init` material that DCMTK accepts.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScuAssociation } from '../../actors/net/scu.ts';
import { VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { REPO, run, startStorescp, tempDir } from '../helpers/processes.ts';
import { capturingLogger, dcmtkTls, listenerTls, makeTestPki, probe, startTlsRouter, strangerClient } from '../helpers/tls.ts';
import type { TlsRouter } from '../helpers/tls.ts';

const pki = makeTestPki();
const silent = capturingLogger('silent').logger;
let router: TlsRouter;

test.before(async () => {
  router = await startTlsRouter({
    listeners: [
      { name: 'plain', aeTitles: ['DICOM_ROUTER'] },
      { name: 'tls', aeTitles: ['DICOM_ROUTER'], tls: listenerTls(pki) },
      { name: 'matrix-nd', aeTitles: ['DICOM_ROUTER'], tls: listenerTls(pki, { profile: 'bcp195-non-downgrading' }) },
      { name: 'matrix-bcp195', aeTitles: ['DICOM_ROUTER'], tls: listenerTls(pki, { profile: 'bcp195' }) },
      { name: 'matrix-ext', aeTitles: ['DICOM_ROUTER'], tls: listenerTls(pki, { profile: 'bcp195-extended' }) },
      {
        name: 'bound', aeTitles: ['DICOM_ROUTER'],
        tls: listenerTls(pki, { aeTitleBindings: [{ aeTitle: 'MODALITY', subject: 'CN=test-modality, O=dicom-router TEST' }, { aeTitle: 'CT1', san: 'DNS:ct1.test' }] }),
      },
    ],
  });
});
test.after.always(async () => router?.stop());

const logLines = (r: { output(): string }) =>
  r.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

function instancesIn(dataDir: string): number {
  const dir = join(dataDir, 'instances');
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.dcm')).length : 0;
}

async function eventually(t: ExecutionContext, what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return void t.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('DCMTK echoscu and storescu over TLS (client certificate presented) to the TLS listener while plain clients use the plain listener', async (t) => {
  for (const profile of ['+py', '+px', '+pz']) {
    const echo = await run('echoscu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', ...dcmtkTls(pki, pki.client, profile), '127.0.0.1', String(router.ports.tls)]);
    t.is(echo.code, 0, `${profile}: ${echo.stdout}${echo.stderr}`);
  }
  const src = tempDir();
  const overTls = writeDataset(join(src, 'tls'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, modality: 'CT' });
  const plain = writeDataset(join(src, 'plain'), { count: 3, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE, modality: 'MR' });
  const before = instancesIn(router.dataDir);
  const [a, b] = await Promise.all([
    run('storescu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', ...dcmtkTls(pki), '127.0.0.1', String(router.ports.tls), ...overTls]),
    run('storescu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', '127.0.0.1', String(router.ports.plain), ...plain]),
  ]);
  t.is(a.code, 0, a.stdout + a.stderr);
  t.is(b.code, 0, b.stdout + b.stderr);
  // Acknowledged from memory, their files follow (written once the router's ingest pauses).
  await eventually(t, 'six more Part-10 files in the spool', () => instancesIn(router.dataDir) - before === 6);
  const accepted = logLines(router).filter((l) => l.msg === 'association accepted' && l.callingAe === 'MODALITY');
  t.true(accepted.some((l) => l.listener === 'tls') && accepted.some((l) => l.listener === 'plain'));
});

test('a DCMTK client whose certificate is not from a trusted CA is refused; the plain listener is unaffected', async (t) => {
  const stranger = strangerClient();
  const r = await run('echoscu', ['-aec', 'DICOM_ROUTER', ...dcmtkTls(pki, stranger), '127.0.0.1', String(router.ports.tls)]);
  t.not(r.code, 0);
  t.is((await run('echoscu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(router.ports.plain)])).code, 0);
});

test('openssl s_client matrix: every suite of each profile accepted; older protocols, CBC, RSA key exchange, other suites and a missing client certificate refused', async (t) => {
  const allowed13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'];
  const allowed12 = ['ECDHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256'];
  // SECLEVEL=0 so the client really offers what its own policy would otherwise withhold.
  const legacy = (v: string) => [v, '-cipher', 'DEFAULT:@SECLEVEL=0'];
  const refusedEverywhere: [string, string[], boolean][] = [
    ['TLS 1.0', legacy('-tls1'), true],
    ['TLS 1.1', legacy('-tls1_1'), true],
    ['CBC suite ECDHE-RSA-AES128-SHA256', ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA256'], true],
    ['CBC suite ECDHE-RSA-AES256-SHA', ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-SHA'], true],
    ['RSA key exchange AES256-GCM-SHA384', ['-tls1_2', '-cipher', 'AES256-GCM-SHA384'], true],
    ['ChaCha20 in TLS 1.2', ['-tls1_2', '-cipher', 'ECDHE-RSA-CHACHA20-POLY1305'], true],
    ['TLS_CHACHA20_POLY1305_SHA256', ['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'], true],
    ['no client certificate', ['-tls1_2'], false],
  ];
  for (const [listener, tls13] of [['matrix-nd', true], ['matrix-bcp195', true], ['matrix-ext', false]] as const) {
    const port = router.ports[listener];
    for (const suite of allowed12) {
      const p = await probe(port, pki, ['-tls1_2', '-cipher', suite]);
      t.true(p.accepted && p.protocol === 'TLSv1.2' && p.cipher === suite, `${listener}: ${suite} should be accepted\n${p.output}`);
    }
    for (const suite of allowed13) {
      const p = await probe(port, pki, ['-tls1_3', '-ciphersuites', suite]);
      t.is(p.accepted && p.cipher === suite, tls13, `${listener}: TLS 1.3 ${suite} should be ${tls13 ? 'accepted' : 'refused'}\n${p.output}`);
    }
    for (const [what, args, withCert] of refusedEverywhere) {
      const p = await probe(port, pki, args, withCert ? pki.client : null);
      t.false(p.accepted, `${listener}: ${what} should be refused\n${p.output}`);
    }
  }
  // Each refusal was the router's (not the client's own policy), logged with the client's address and a reason.
  // The last lines may reach us through the pipe after the last probe returned: wait for all of them.
  const refused = () => logLines(router).filter((l) => l.msg === 'TLS handshake failed: connection closed');
  await eventually(t, 'every refusal logged', () => refused().length >= 3 * refusedEverywhere.length + allowed13.length);
  const refusals = refused();
  for (const listener of ['matrix-nd', 'matrix-bcp195']) {
    const mine = refusals.filter((l) => l.listener === listener);
    t.is(mine.length, refusedEverywhere.length, JSON.stringify(mine));
    t.true(mine.every((l) => /^127\.0\.0\.1:\d+$/.test(String(l.peer)) && typeof l.reason === 'string'));
    t.deepEqual(new Set(mine.map((l) => l.reason)), new Set(['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_NO_SHARED_CIPHER', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE']));
  }
  t.is(refusals.filter((l) => l.listener === 'matrix-ext').length, refusedEverywhere.length + allowed13.length);
});

test('a plain client on the TLS port and a TLS client on the plain port fail cleanly; associations in progress carry on', async (t) => {
  const open = (port: number, tls?: { profile: 'bcp195'; ca: string; key: string; cert: string }) =>
    ScuAssociation.open({ host: '127.0.0.1', port, callingAeTitle: 'HOLDER', calledAeTitle: 'DICOM_ROUTER', contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], tls, logger: silent });
  const heldTls = await open(router.ports.tls, { profile: 'bcp195', ca: pki.ca.cert, key: pki.client.key, cert: pki.client.cert });
  const heldPlain = await open(router.ports.plain);
  const plainOnTls = await run('echoscu', ['-aet', 'CROSSED', '-aec', 'DICOM_ROUTER', '127.0.0.1', String(router.ports.tls)], { timeoutMs: 15_000 });
  const tlsOnPlain = await run('echoscu', ['-aet', 'CROSSED', '-aec', 'DICOM_ROUTER', ...dcmtkTls(pki), '127.0.0.1', String(router.ports.plain)], { timeoutMs: 15_000 });
  t.not(plainOnTls.code, 0);
  t.regex(plainOnTls.stdout + plainOnTls.stderr, /Association Request Failed/);
  t.not(tlsOnPlain.code, 0);
  t.regex(tlsOnPlain.stdout + tlsOnPlain.stderr, /TLS error|Association Request Failed/);
  t.is((await heldTls.echo()).status, 0);
  t.is((await heldPlain.echo()).status, 0);
  await heldTls.release();
  await heldPlain.release();
  const lines = logLines(router);
  t.true(lines.some((l) => l.listener === 'tls' && l.msg === 'TLS handshake failed: connection closed' && l.reason === 'ERR_SSL_WRONG_VERSION_NUMBER'));
  t.true(lines.some((l) => l.listener === 'plain' && l.msg === 'invalid PDU received, aborting' && /0x16/.test(String(l.detail))));
  t.false(lines.some((l) => l.callingAe === 'CROSSED'), 'neither crossed client got as far as an A-ASSOCIATE-RQ');
});

test('AE title bound to a certificate: the right pair is accepted, a wrong one rejected 1/1/3 (calling AE title not recognized)', async (t) => {
  const port = String(router.ports.bound);
  const right = await run('echoscu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', ...dcmtkTls(pki), '127.0.0.1', port]);
  t.is(right.code, 0, right.stdout + right.stderr);
  const wrong = await run('echoscu', ['-aet', 'CT1', '-aec', 'DICOM_ROUTER', ...dcmtkTls(pki), '127.0.0.1', port]);
  t.not(wrong.code, 0);
  t.regex(wrong.stdout + wrong.stderr, /Calling AE Title Not Recognized/i);
  const ct1 = pki.issue('ct1', { commonName: 'ct1', names: ['ct1.test'], usage: 'client' });
  const ct1Right = await run('echoscu', ['-aet', 'CT1', '-aec', 'DICOM_ROUTER', ...dcmtkTls(pki, ct1), '127.0.0.1', port]);
  t.is(ct1Right.code, 0, ct1Right.stdout + ct1Right.stderr);
  const logged = logLines(router).filter((l) => l.msg === 'association rejected: calling AE title not bound to this certificate');
  t.true(logged.some((l) => l.callingAe === 'CT1' && l.tlsSubject === 'O=dicom-router TEST, CN=test-modality'));
});

test('forwarding to a DCMTK storescp +tls peer (the router presents its certificate and checks the peer\'s)', async (t) => {
  const out = tempDir();
  const scp = await startStorescp(out, { aeTitle: 'TLS_PACS', extraArgs: ['+tls', pki.server.key, pki.server.cert, '+cf', pki.ca.cert] });
  t.teardown(scp.stop);
  const rules = tempDir('rules-');
  writeFileSync(join(rules, 'rules.yaml'), 'rules:\n  - name: all\n    then: { forward: [TLS_PACS] }\n');
  const fwd = await startTlsRouter({
    listeners: [{ name: 'plain', aeTitles: ['DICOM_ROUTER'] }],
    peers: [{
      aeTitle: 'TLS_PACS', host: '127.0.0.1', port: scp.port,
      retry: { attempts: 20, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 },
      tls: { profile: 'bcp195-non-downgrading', key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert },
    }],
    rulesDir: rules,
  });
  t.teardown(fwd.stop);
  const files = writeDataset(join(tempDir(), 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const sent = await run('storescu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', '127.0.0.1', String(fwd.ports.plain), ...files]);
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  const received = () => readdirSync(out).filter((f) => !f.startsWith('.')).length;
  await eventually(t, 'storescp +tls received all three', () => received() === 3);
  // The router logs each delivery once storescp's answer is in: after the file, through a pipe.
  await eventually(t, 'three deliveries logged', () => logLines(fwd).filter((l) => l.msg === 'delivered').length === 3);
  const lines = logLines(fwd);
  t.true(lines.some((l) => l.msg === 'TLS handshake completed' && l.calledAe === 'TLS_PACS'), 'the association to the peer ran over TLS');
  t.is(lines.filter((l) => l.msg === 'delivered').length, 3);
});

test('`router certs init DIR` makes a lab CA, server and client certificate (named as test material) that DCMTK accepts', async (t) => {
  const dir = join(tempDir('lab-'), 'certs');
  const made = await run(process.execPath, [join(REPO, 'scripts/router.ts'), 'certs', 'init', dir]);
  t.is(made.code, 0, made.stdout + made.stderr);
  t.regex(made.stdout, /TEST certificates/);
  for (const f of ['lab-test-ca', 'lab-test-server', 'lab-test-client']) {
    t.true(existsSync(join(dir, `${f}.crt`)));
    t.is(statSync(join(dir, `${f}.key`)).mode & 0o777, 0o600, `${f}.key is private`);
  }
  const again = await run(process.execPath, [join(REPO, 'scripts/router.ts'), 'certs', 'init', dir]);
  t.is(again.code, 1, 'existing material is not overwritten');
  t.regex(again.stderr, /not overwriting existing files \(use --force\)/);

  const lab = { key: join(dir, 'lab-test-server.key'), cert: join(dir, 'lab-test-server.crt'), ca: join(dir, 'lab-test-ca.crt') };
  const labRouter = await startTlsRouter({ listeners: [{ name: 'tls', aeTitles: ['DICOM_ROUTER'], tls: lab }] });
  t.teardown(labRouter.stop);
  const echo = await run('echoscu', ['-aec', 'DICOM_ROUTER', '+tls', join(dir, 'lab-test-client.key'), join(dir, 'lab-test-client.crt'), '+cf', lab.ca, 'localhost', String(labRouter.ports.tls)]);
  t.is(echo.code, 0, echo.stdout + echo.stderr);
  // And DCMTK's own server takes the lab server certificate, verifying the lab client.
  const out = tempDir();
  const scp = await startStorescp(out, { aeTitle: 'LAB_SCP', extraArgs: ['+tls', lab.key, lab.cert, '+cf', lab.ca] });
  t.teardown(scp.stop);
  const toScp = await run('echoscu', ['-aec', 'LAB_SCP', '+tls', join(dir, 'lab-test-client.key'), join(dir, 'lab-test-client.crt'), '+cf', lab.ca, '127.0.0.1', String(scp.port)]);
  t.is(toScp.code, 0, toScp.stdout + toScp.stderr);
});
