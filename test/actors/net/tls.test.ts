// TLS in-process: the profiles' exact options, material reload and expiry warnings, certificate
// identity and AE-title bindings, and the router's TLS listener against node clients: handshake
// timeout without an association slot, missing/untrusted client certificates, optional client
// certificates, bindings, tlsSubject seen by rules, and reload under an established association.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { stringify } from 'yaml';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { startRouter } from '../../../actors/router.ts';
import { AssociationRejectedError, ScuAssociation } from '../../../actors/net/scu.ts';
import { checkAeTitleBinding, dnComponents, identityOf, parseSubjectAltNames, sameDn, sanMatches } from '../../../actors/net/tls-identity.ts';
import { profileOptions, startTlsSupervisor, TlsMaterial, warnExpiring } from '../../../actors/net/tls.ts';
import type { PeerTlsConfig } from '../../../config/config.ts';
import { parseConfig } from '../../../config/config.ts';
import { VERIFICATION_SOP_CLASS } from '../../../protocol/uids.ts';
import { issueCertificate } from '../../../scripts/certs.ts';
import { makeInstance, SOP, TS } from '../../helpers/dicom-files.ts';
import { tempDir } from '../../helpers/processes.ts';
import { capturingLogger, makeTestPki, strangerClient } from '../../helpers/tls.ts';

const pki = makeTestPki();
const stranger = strangerClient();

test('profiles: TLS 1.2 minimum always; TLS 1.3 with its two AES-GCM suites except in the extended profile; the four ECDHE/DHE-RSA AES-GCM suites', (t) => {
  const tls12 = 'ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256';
  for (const name of ['bcp195', 'bcp195-non-downgrading'] as const) {
    t.like(profileOptions(name), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: `TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:${tls12}`, honorCipherOrder: true, dhparam: 'auto' });
  }
  t.like(profileOptions('bcp195-extended'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: tls12, honorCipherOrder: true, dhparam: 'auto' });
});

test('certificate identity: subject in certificate order, SANs parsed; DN comparison ignores order, spacing and attribute case', (t) => {
  const id = identityOf(new X509Certificate(readPem(pki.client.cert)));
  t.is(id.subject, 'O=dicom-router TEST, CN=test-modality');
  t.deepEqual(id.subjectAltNames, [{ type: 'DNS', value: 'modality.test' }]);
  t.deepEqual(parseSubjectAltNames('DNS:a.example, IP Address:10.0.0.1, URI:"urn:x,y", email:ct@h.example'), [
    { type: 'DNS', value: 'a.example' }, { type: 'IP', value: '10.0.0.1' }, { type: 'URI', value: 'urn:x,y' }, { type: 'EMAIL', value: 'ct@h.example' },
  ]);
  t.true(sameDn('CN=test-modality,o=dicom-router TEST', id.subject));
  t.true(sameDn('/O=dicom-router TEST/CN=test-modality', id.subject));
  t.false(sameDn('CN=test-modality', id.subject), 'every component must match');
  t.deepEqual(dnComponents('CN=a\\, b, O=x'), ['CN=a, b', 'O=x']);
  t.true(sanMatches('DNS:MODALITY.test', id.subjectAltNames));
  t.true(sanMatches('modality.test', id.subjectAltNames));
  t.false(sanMatches('IP:modality.test', id.subjectAltNames));
});

test('AE-title bindings: listed AE title with a matching certificate only; none configured means no check', (t) => {
  const id = identityOf(new X509Certificate(readPem(pki.client.cert)));
  const bindings = [{ aeTitle: 'CT1', subject: 'CN=test-modality, O=dicom-router TEST' }, { aeTitle: 'MR1', san: 'DNS:mr1.test' }, { aeTitle: 'MR1', san: 'modality.test', subject: 'CN=other' }];
  t.deepEqual(checkAeTitleBinding(bindings, 'CT1', id), { ok: true });
  t.deepEqual(checkAeTitleBinding(bindings, 'MR1', id), {
    ok: false,
    why: "certificate 'O=dicom-router TEST, CN=test-modality' does not match the binding of 'MR1' (expected SAN 'DNS:mr1.test' or subject 'CN=other' and SAN 'modality.test')",
  });
  t.regex((checkAeTitleBinding(bindings, 'US1', id) as { why: string }).why, /has no certificate binding/);
  t.regex((checkAeTitleBinding(bindings, 'CT1', undefined) as { why: string }).why, /presented none/);
  t.deepEqual(checkAeTitleBinding([], 'ANY', undefined), { ok: true });
});

test('expiry: a certificate within 30 days is warned about, an expired one is an error; the supervisor checks at start and then periodically', async (t) => {
  const dir = tempDir('tls-expiry-');
  const soon = issueCertificate(pki.ca, dir, 'soon', { commonName: 'soon', usage: 'server', days: 10, names: ['localhost'] });
  const { logger, lines } = capturingLogger();
  const sup = startTlsSupervisor({
    listeners: [{ name: 'tls', tls: { profile: 'bcp195', key: soon.key, cert: soon.cert, ca: pki.ca.cert, requireClientCert: true, handshakeSeconds: 1, aeTitleBindings: [] } } as never],
    peers: [{ name: 'PACS', tls: { profile: 'bcp195', ca: pki.ca.cert, key: soon.key, cert: soon.cert } } as never],
  }, logger, { checkEveryMs: 100, watch: false });
  t.teardown(() => sup.stop());
  const warned = () => lines().filter((l) => l.msg === 'TLS certificate expires within 30 days' && l.subject === 'O=dicom-router TEST, CN=soon');
  t.deepEqual(warned().map((l) => l.tls).sort(), ['listener tls', 'peer PACS'], 'at start: the listener and the peer certificate');
  t.true(warned().every((l) => l.daysLeft === 9 || l.daysLeft === 10));
  await new Promise((r) => setTimeout(r, 250));
  t.true(warned().length >= 4, 'and again at each check');
  t.true(sup.certificates().some((c) => c.owner === 'listener tls' && c.role === 'ca'), 'the CA is listed for the inspector');

  const expired = issueCertificate(pki.ca, dir, 'expired', { commonName: 'expired', usage: 'server', days: -1 });
  const material = TlsMaterial.load('listener x', 'bcp195', { key: expired.key, cert: expired.cert, ca: pki.ca.cert });
  const log2 = capturingLogger();
  t.is(warnExpiring(material.certificates(), log2.logger).length, 1);
  t.like(log2.lines()[0], { level: 50, msg: 'TLS certificate has expired', subject: 'O=dicom-router TEST, CN=expired' });
});

test('material reload: replaced files give a new context; a half-replaced set keeps the old one; subscribers are told', (t) => {
  const dir = tempDir('tls-reload-');
  const files = { key: join(dir, 'server.key'), cert: join(dir, 'server.crt'), ca: join(dir, 'ca.crt') };
  copyFileSync(pki.server.key, files.key);
  copyFileSync(pki.server.cert, files.cert);
  copyFileSync(pki.ca.cert, files.ca);
  const material = TlsMaterial.load('listener l', 'bcp195', files);
  const first = material.context;
  let changes = 0;
  material.onChange(() => changes++);
  const { logger, lines } = capturingLogger();
  t.false(material.reload(logger), 'unchanged files: nothing to do');
  const next = pki.issue('server-2', { commonName: 'router-2.test' });
  copyFileSync(next.key, files.key); // key replaced, certificate not yet
  t.false(material.reload(logger));
  t.is(material.context, first);
  t.regex(String(lines().at(-1)?.err), /key values mismatch/);
  copyFileSync(next.cert, files.cert);
  t.true(material.reload(logger));
  t.not(material.context, first);
  t.is(changes, 1);
  t.like(lines().at(-1), { msg: 'TLS key and certificates reloaded: new handshakes use them', subject: 'O=dicom-router TEST, CN=router-2.test' });
});

// ---- the router's TLS listener, in-process ----

async function tlsRouter(tls: Record<string, unknown> = {}, listener: Record<string, unknown> = {}, rules?: string) {
  const dir = tempDir();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  if (rules) writeFileSync(join(rulesDir, 'rules.yaml'), rules);
  const { logger, lines } = capturingLogger('debug');
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [
      { name: 'plain', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' },
      { name: 'tls', aeTitles: ['DICOM_ROUTER'], port: 2, bind: '127.0.0.1', ...listener, tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert, ...tls } },
    ],
    routing: { rulesDir },
  }), join(dir, 'router.yaml'));
  for (const l of config.listeners) l.port = 0;
  const running = await startRouter(config, { logger, watchRules: false });
  return { ...running, port: running.ports.get('tls')!, plainPort: running.ports.get('plain')!, lines, dir };
}

const clientTls = (who = pki.client, extra: Partial<PeerTlsConfig> = {}): PeerTlsConfig => ({ profile: 'bcp195', ca: pki.ca.cert, key: who.key, cert: who.cert, ...extra });
const openScu = (port: number, tls?: PeerTlsConfig, callingAeTitle = 'MODALITY') =>
  ScuAssociation.open({
    host: '127.0.0.1', port, callingAeTitle, calledAeTitle: 'DICOM_ROUTER', tls,
    contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }, { abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }],
    logger: capturingLogger('silent').logger,
  });

async function echo(port: number, tls?: PeerTlsConfig, callingAeTitle?: string): Promise<number | undefined> {
  const scu = await openScu(port, tls, callingAeTitle);
  const outcome = await scu.echo();
  await scu.release();
  return outcome.status;
}

test('a client that never completes the handshake is closed after the timeout, logged with its address and reason, and holds no association slot', async (t) => {
  const r = await tlsRouter({ handshakeSeconds: 0.4 }, { maxAssociations: 1 });
  t.teardown(() => r.stop(0));
  const silent = netConnect({ host: '127.0.0.1', port: r.port });
  const closed = new Promise<number>((resolve) => silent.once('close', () => resolve(Date.now())));
  await new Promise((resolve) => silent.once('connect', resolve));
  const start = Date.now();
  const localPort = silent.localPort;
  // The one association slot is free while the silent client sits in its handshake.
  t.is(await echo(r.port, clientTls()), 0);
  const at = await closed;
  t.true(at - start >= 300 && at - start < 3000, `closed after ${at - start} ms`);
  const line = r.lines().find((l) => l.msg === 'TLS handshake failed: connection closed');
  t.like(line, { listener: 'tls', peer: `127.0.0.1:${localPort}`, reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' });
  t.is(r.lines().filter((l) => l.msg === 'connection accepted' && l.listener === 'tls').length, 1, 'only the echo became an association');
});

test('client certificates: missing or untrusted is refused and logged; the plain listener is unaffected', async (t) => {
  const r = await tlsRouter();
  t.teardown(() => r.stop(0));
  await t.throwsAsync(echo(r.port, { profile: 'bcp195', ca: pki.ca.cert }), { message: /before the association was established/ });
  // node refuses an untrusted certificate after its handshake, with no alert: the client just sees the close.
  await t.throwsAsync(echo(r.port, clientTls(stranger)), { message: /before the association was established|aborted while establishing/ });
  t.is(await echo(r.plainPort), 0);
  t.is(await echo(r.port, clientTls()), 0);
  const refusals = r.lines().filter((l) => l.msg === 'TLS handshake failed: connection closed').map((l) => l.reason);
  t.true(refusals.includes('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'), JSON.stringify(refusals));
  t.true(refusals.some((x) => /client certificate not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER/.test(String(x))), JSON.stringify(refusals));
});

test('requireClientCert: false admits a client without a certificate, still refuses an untrusted one', async (t) => {
  const r = await tlsRouter({ requireClientCert: false });
  t.teardown(() => r.stop(0));
  t.is(await echo(r.port, { profile: 'bcp195-extended', ca: pki.ca.cert }), 0);
  await t.throwsAsync(echo(r.port, clientTls(stranger)));
  t.like(r.lines().find((l) => l.msg === 'TLS client certificate not trusted: connection closed'), { listener: 'tls', subject: 'O=dicom-router TEST, CN=test-modality' });
});

test('the SCU checks the server: an untrusted CA or a wrong name fails with the TLS reason', async (t) => {
  const r = await tlsRouter();
  t.teardown(() => r.stop(0));
  const otherCa = join(tempDir(), 'ca.crt');
  copyFileSync(stranger.cert, otherCa);
  await t.throwsAsync(echo(r.port, clientTls(pki.client, { ca: otherCa })), { message: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/ });
  await t.throwsAsync(echo(r.port, clientTls(pki.client, { serverName: 'pacs.elsewhere.test' })), { message: /ERR_TLS_CERT_ALTNAME_INVALID/ });
  t.is(await echo(r.port, clientTls(pki.client, { serverName: 'localhost' })), 0);
});

test('AE title bindings on the listener: the bound AE title with its certificate is accepted; other pairs are rejected 1/1/3 and logged', async (t) => {
  const r = await tlsRouter({ aeTitleBindings: [{ aeTitle: 'MODALITY', san: 'DNS:modality.test' }, { aeTitle: 'CT1', subject: 'CN=ct1, O=dicom-router TEST' }] });
  t.teardown(() => r.stop(0));
  t.is(await echo(r.port, clientTls(), 'MODALITY'), 0);
  const wrong = await t.throwsAsync(echo(r.port, clientTls(), 'CT1'), { instanceOf: AssociationRejectedError });
  t.like((wrong as AssociationRejectedError).rj, { result: 1, source: 1, reason: 3 });
  await t.throwsAsync(echo(r.port, clientTls(), 'UNBOUND'), { instanceOf: AssociationRejectedError });
  const logged = r.lines().filter((l) => l.msg === 'association rejected: calling AE title not bound to this certificate');
  t.is(logged.length, 2);
  t.like(logged[0], { callingAe: 'CT1', tlsSubject: 'O=dicom-router TEST, CN=test-modality', result: 1, source: 1, reason: 3 });
  t.regex(String(logged[0].why), /does not match the binding of 'CT1'/);
});

test('routing rules see the client certificate subject as tlsSubject (only on the TLS listener)', async (t) => {
  const rules = `rules:\n  - name: not-from-that-cert\n    when: { tlsSubject: { regex: 'CN=test-modality$' } }\n    then: { reject: { status: 0xA900, comment: seen tlsSubject } }\n`;
  const r = await tlsRouter({}, {}, rules);
  t.teardown(() => r.stop(0));
  const file = join(r.dir, 'ct.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE }));
  const part10 = await readPart10File(file);
  const overTls = await openScu(r.port, clientTls());
  t.like(await overTls.store(part10), { status: 0xa900, errorComment: 'seen tlsSubject' });
  await overTls.release();
  const plain = await openScu(r.plainPort);
  t.like(await plain.store(part10), { status: 0 });
  await plain.release();
});

test('certificate reload: after the files are replaced new handshakes get the new certificate, an established association carries on', async (t) => {
  const dir = tempDir('tls-live-');
  const files = { key: join(dir, 'server.key'), cert: join(dir, 'server.crt') };
  copyFileSync(pki.server.key, files.key);
  copyFileSync(pki.server.cert, files.cert);
  const r = await tlsRouter(files);
  t.teardown(() => r.stop(0));
  const established = await openScu(r.port, clientTls());
  t.is((await established.echo()).status, 0);
  t.is(await serverCertCn(r.port), 'router.test');

  const next = pki.issue('server-live-2', { commonName: 'router-renewed.test' });
  copyFileSync(next.key, files.key);
  copyFileSync(next.cert, files.cert);
  const deadline = Date.now() + 5000;
  while ((await serverCertCn(r.port)) !== 'router-renewed.test' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  t.is(await serverCertCn(r.port), 'router-renewed.test');
  t.truthy(r.lines().find((l) => l.msg === 'TLS key and certificates reloaded: new handshakes use them'));
  t.true(r.tlsCertificates().some((c) => c.owner === 'listener tls' && c.role === 'certificate' && c.subject.endsWith('CN=router-renewed.test')), 'what the inspector shows follows the reload');
  t.is((await established.echo()).status, 0, 'the association made with the old certificate still works');
  await established.release();
  // The reloaded context keeps the profile: a CBC suite is still refused.
  await t.throwsAsync(handshake(r.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA256' }));
});

function readPem(file: string): string {
  return readFileSync(file, 'utf8');
}

/** A bare TLS handshake with the test client certificate; resolves with the server certificate. */
function handshake(port: number, opts: { maxVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string } = {}): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: readPem(pki.ca.cert), key: readPem(pki.client.key), cert: readPem(pki.client.cert), ...opts }, () => {
      const cert = s.getPeerX509Certificate()!;
      s.destroy();
      resolve(cert);
    });
    s.once('error', reject);
  });
}

async function serverCertCn(port: number): Promise<string | undefined> {
  return /CN=(.*)/.exec((await handshake(port)).subject)?.[1];
}
