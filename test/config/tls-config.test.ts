// listeners[].tls and peers[].tls: defaults, paths relative to the config file, and every file
// checked at load (exists, parses, key belongs to its certificate, RSA >= 2048, not expired), each
// problem placed at file:line:column of the field that names the file.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, parseConfig } from '../../config/config.ts';
import { issueCertificate } from '../../scripts/certs.ts';
import { tempDir } from '../helpers/processes.ts';
import { makeTestPki } from '../helpers/tls.ts';

const pki = makeTestPki();

/** A config folder with the PKI copied under certs/, so the YAML can use relative paths. */
function folder(): string {
  const dir = tempDir('tls-config-');
  mkdirSync(join(dir, 'certs'));
  for (const [name, file] of [['ca.crt', pki.ca.cert], ['server.key', pki.server.key], ['server.crt', pki.server.cert], ['client.key', pki.client.key], ['client.crt', pki.client.cert]]) {
    copyFileSync(file, join(dir, 'certs', name));
  }
  return dir;
}

const TLS_LISTENER = (tls: string) => `listeners:
  - name: plain
    aeTitles: [DICOM_ROUTER]
  - name: secure
    aeTitles: [DICOM_ROUTER]
    tls:
${tls}`;

const GOOD = '      key: certs/server.key\n      cert: certs/server.crt\n      ca: certs/ca.crt\n';

function problems(t: ExecutionContext, text: string, file: string): ConfigError {
  return t.throws(() => parseConfig(text, file), { instanceOf: ConfigError }) as ConfigError;
}

function problemAt(t: ExecutionContext, error: ConfigError, path: string, line: number, column: number, message: RegExp): void {
  const p = error.problems.find((x) => x.path === path);
  if (!p) return void t.fail(`no problem at ${path}:\n${error.message}`);
  t.is(p.line, line, error.message);
  t.is(p.column, column, error.message);
  t.regex(p.message, message);
}

test('a TLS listener beside a plain one: defaults (port 2762, non-downgrading profile, client certificate required) and paths resolved against the config folder', (t) => {
  const dir = folder();
  const config = parseConfig(TLS_LISTENER(GOOD), join(dir, 'router.yaml'));
  t.is(config.listeners[0].port, 11112);
  t.is(config.listeners[0].tls, undefined);
  t.deepEqual(config.listeners[1].tls, {
    profile: 'bcp195-non-downgrading',
    key: join(dir, 'certs/server.key'),
    cert: join(dir, 'certs/server.crt'),
    ca: join(dir, 'certs/ca.crt'),
    requireClientCert: true,
    handshakeSeconds: 10,
    aeTitleBindings: [],
  });
  t.is(config.listeners[1].port, 2762);
});

test('every profile name is accepted; a misspelt one is located with a suggestion', (t) => {
  const dir = folder();
  for (const profile of ['bcp195', 'bcp195-non-downgrading', 'bcp195-extended']) {
    t.is(parseConfig(TLS_LISTENER(`      profile: ${profile}\n${GOOD}`), join(dir, 'router.yaml')).listeners[1].tls?.profile as string, profile);
  }
  const error = problems(t, TLS_LISTENER(`      profile: bcp195-extnded\n${GOOD}`), join(dir, 'router.yaml'));
  problemAt(t, error, 'listeners[1].tls.profile', 7, 16, /one of 'bcp195', 'bcp195-non-downgrading', 'bcp195-extended' .*did you mean 'bcp195-extended'/);
});

test('peers[].tls: ca required, key and cert together, serverName kept, paths resolved', (t) => {
  const dir = folder();
  const base = 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\npeers:\n  - aeTitle: PACS\n    host: 127.0.0.1\n    port: 2762\n    tls:\n';
  const config = parseConfig(`${base}      profile: bcp195-extended\n      key: certs/client.key\n      cert: certs/client.crt\n      ca: certs/ca.crt\n      serverName: localhost\n`, join(dir, 'r.yaml'));
  t.deepEqual(config.peers[0].tls, { profile: 'bcp195-extended', key: join(dir, 'certs/client.key'), cert: join(dir, 'certs/client.crt'), ca: join(dir, 'certs/ca.crt'), serverName: 'localhost' });
  t.deepEqual(parseConfig(`${base}      ca: certs/ca.crt\n`, join(dir, 'r.yaml')).peers[0].tls, { profile: 'bcp195-non-downgrading', ca: join(dir, 'certs/ca.crt') });
  problemAt(t, problems(t, `${base}      key: certs/client.key\n`, join(dir, 'r.yaml')), 'peers[0].tls.ca', 9, 7, /required field is missing \(expected the path of a PEM file\)/);
  problemAt(t, problems(t, `${base}      key: certs/client.key\n      ca: certs/ca.crt\n`, join(dir, 'r.yaml')), 'peers[0].tls.cert', 9, 7, /needs both key and cert/);
  problemAt(t, problems(t, `${base}      ca: certs/ca.crt\n      serverName: "not a host"\n`, join(dir, 'r.yaml')), 'peers[0].tls.serverName', 10, 19, /host name/);
});

test('a missing file is named at its field', (t) => {
  const dir = folder();
  const error = problems(t, TLS_LISTENER('      key: certs/nope.key\n      cert: certs/server.crt\n      ca: certs/missing-ca.crt\n'), join(dir, 'router.yaml'));
  problemAt(t, error, 'listeners[1].tls.key', 7, 12, /cannot read '.*certs\/nope\.key': no such file/);
  problemAt(t, error, 'listeners[1].tls.ca', 9, 11, /cannot read '.*certs\/missing-ca\.crt': no such file/);
  t.is(error.problems.length, 2, error.message);
});

test('files that do not parse, a key of another certificate, a CA file without certificates', (t) => {
  const dir = folder();
  writeFileSync(join(dir, 'certs/garbage.pem'), 'hello\n');
  writeFileSync(join(dir, 'certs/bad.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const garbage = problems(t, TLS_LISTENER('      key: certs/garbage.pem\n      cert: certs/bad.crt\n      ca: certs/garbage.pem\n'), join(dir, 'router.yaml'));
  problemAt(t, garbage, 'listeners[1].tls.key', 7, 12, /not a PEM private key/);
  problemAt(t, garbage, 'listeners[1].tls.cert', 8, 13, /does not parse/);
  problemAt(t, garbage, 'listeners[1].tls.ca', 9, 11, /holds no PEM certificate/);
  const mismatch = problems(t, TLS_LISTENER('      key: certs/client.key\n      cert: certs/server.crt\n      ca: certs/ca.crt\n'), join(dir, 'router.yaml'));
  problemAt(t, mismatch, 'listeners[1].tls.key', 7, 12, /is not the private key of the certificate in '.*server\.crt'/);
});

test('an encrypted key, a non-RSA certificate, a short RSA key and an expired certificate are refused at load', (t) => {
  const dir = folder();
  const certs = join(dir, 'certs');
  const sh = (args: string[]) => t.is(spawnSync('openssl', args).status, 0, args.join(' '));
  sh(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-aes-128-cbc', '-pass', 'pass:x', '-out', join(certs, 'enc.key')]);
  const encrypted = problems(t, TLS_LISTENER('      key: certs/enc.key\n      cert: certs/server.crt\n      ca: certs/ca.crt\n'), join(dir, 'router.yaml'));
  problemAt(t, encrypted, 'listeners[1].tls.key', 7, 12, /encrypted with a passphrase/);

  sh(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(certs, 'ec.key'), '-out', join(certs, 'ec.crt'), '-days', '30', '-subj', '/CN=ec']);
  const ec = problems(t, TLS_LISTENER('      key: certs/ec.key\n      cert: certs/ec.crt\n      ca: certs/ca.crt\n'), join(dir, 'router.yaml'));
  problemAt(t, ec, 'listeners[1].tls.cert', 8, 13, /key is ec; .*need an RSA certificate/);

  sh(['req', '-x509', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', join(certs, 'short.key'), '-out', join(certs, 'short.crt'), '-days', '30', '-subj', '/CN=short']);
  const short = problems(t, TLS_LISTENER('      key: certs/short.key\n      cert: certs/short.crt\n      ca: certs/ca.crt\n'), join(dir, 'router.yaml'));
  problemAt(t, short, 'listeners[1].tls.cert', 8, 13, /1024 bits; BCP 195 needs at least 2048/);

  const expired = issueCertificate(pki.ca, certs, 'expired', { commonName: 'expired', usage: 'server', days: -1 });
  const old = problems(t, TLS_LISTENER(`      key: ${expired.key}\n      cert: ${expired.cert}\n      ca: certs/ca.crt\n`), join(dir, 'router.yaml'));
  problemAt(t, old, 'listeners[1].tls.cert', 8, 13, /'O=dicom-router TEST, CN=expired' expired on/);
});

test('aeTitleBindings: subject and/or san required, AE titles checked, bindings kept trimmed', (t) => {
  const dir = folder();
  const config = parseConfig(TLS_LISTENER(`${GOOD}      aeTitleBindings:\n        - { aeTitle: 'CT1 ', subject: 'CN=test-modality, O=dicom-router TEST' }\n        - { aeTitle: MR1, san: 'DNS:modality.test' }\n`), join(dir, 'router.yaml'));
  t.deepEqual(config.listeners[1].tls?.aeTitleBindings, [
    { aeTitle: 'CT1', subject: 'CN=test-modality, O=dicom-router TEST' },
    { aeTitle: 'MR1', san: 'DNS:modality.test' },
  ]);
  const error = problems(t, TLS_LISTENER(`${GOOD}      aeTitleBindings:\n        - { aeTitle: CT1 }\n        - { aeTitle: 'A\\\\B', san: x }\n        - { aeTitle: CT2, subjct: 'CN=x' }\n`), join(dir, 'router.yaml'));
  problemAt(t, error, 'listeners[1].tls.aeTitleBindings[0]', 11, 11, /needs subject or san/);
  problemAt(t, error, 'listeners[1].tls.aeTitleBindings[1].aeTitle', 12, 22, /backslash/);
  problemAt(t, error, 'listeners[1].tls.aeTitleBindings[2].subjct', 13, 27, /unknown field 'subjct' \(did you mean 'subject'\?\)/);
});

test('TLS and plain listeners may not share a port; unknown TLS fields are located', (t) => {
  const dir = folder();
  const clash = problems(t, `listeners:\n  - name: a\n    aeTitles: [X]\n    port: 2762\n  - name: b\n    aeTitles: [X]\n    tls:\n${GOOD}`, join(dir, 'router.yaml'));
  t.regex(clash.message, /port 2762 on 0\.0\.0\.0 is already used by listeners\[0\]/);
  const unknown = problems(t, TLS_LISTENER(`${GOOD}      requireClientCerts: false\n`), join(dir, 'router.yaml'));
  problemAt(t, unknown, 'listeners[1].tls.requireClientCerts', 10, 7, /did you mean 'requireClientCert'/);
});
