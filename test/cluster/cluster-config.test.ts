// The `cluster` section (issue 17): its exact names, defaults, and located errors; absent, nothing changes.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, parseConfig } from '../../config/config.ts';
import { tempDir } from '../helpers/processes.ts';

const MINIMAL = 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 11112\n';

function problems(text: string): string[] {
  try {
    parseConfig(text, '/etc/router/router.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

test('without a cluster section the config has none (one node on LMDB)', (t) => {
  t.false('cluster' in parseConfig(MINIMAL, '/etc/router/router.yaml'));
});

test('a url, storage and lease default to local and 30 s', (t) => {
  const c = parseConfig(`${MINIMAL}cluster:\n  nodeName: node-a\n  postgres: { url: 'postgresql://router@db.example:5432/router' }\n`, '/etc/router/router.yaml');
  t.deepEqual(c.cluster, { nodeName: 'node-a', postgres: { url: 'postgresql://router@db.example:5432/router' }, storage: 'local', leaseSeconds: 30 });
});

test('host, port, database, user and a password file resolved against the config folder', (t) => {
  const dir = tempDir('cluster-config-');
  writeFileSync(join(dir, 'pg.pass'), 'secret\n');
  const c = parseConfig(`${MINIMAL}cluster:\n  nodeName: n1\n  storage: shared\n  leaseSeconds: 10\n  postgres:\n    host: 127.0.0.1\n    database: router\n    user: router\n    passwordFile: pg.pass\n`, join(dir, 'router.yaml'));
  t.deepEqual(c.cluster, { nodeName: 'n1', storage: 'shared', leaseSeconds: 10, postgres: { host: '127.0.0.1', port: 5432, database: 'router', user: 'router', passwordFile: resolve(dir, 'pg.pass') } });
});

test('url and host together, a missing field, a bad storage word and an unreadable password file are located', (t) => {
  t.deepEqual(problems(`${MINIMAL}cluster:\n  nodeName: a\n  postgres:\n    url: postgresql://x@h/db\n    host: h\n`), [
    "9:5 cluster.postgres.host: give either url, or host, port, database, user and passwordFile, not both (url is set)",
  ]);
  const missing = problems(`${MINIMAL}cluster:\n  nodeName: a\n  postgres:\n    host: h\n`);
  t.is(missing.length, 1);
  t.regex(missing[0], /cluster\.postgres: needs url, or host, database and user \(missing database, user\)/);
  const storage = problems(`${MINIMAL}cluster:\n  nodeName: a\n  storage: nfs\n  postgres: { url: 'postgresql://h/db' }\n`);
  t.is(storage.length, 1);
  t.regex(storage[0], /^7:12 cluster\.storage: .*'shared', 'local'/);
  const pass = problems(`${MINIMAL}cluster:\n  nodeName: a\n  postgres: { host: h, database: d, user: u, passwordFile: /nonexistent/pg.pass }\n`);
  t.is(pass.length, 1);
  t.regex(pass[0], /cluster\.postgres\.passwordFile: cannot read the password file: ENOENT/);
  const noName = problems(`${MINIMAL}cluster:\n  postgres: { url: 'postgresql://h/db' }\n`);
  t.is(noName.length, 1);
  t.regex(noName[0], /nodeName/);
  const pw = problems(`${MINIMAL}cluster:\n  nodeName: a\n  postgres: { url: 'postgresql://u:secret@h/db' }\n`);
  t.regex(pw[0], /must not carry a password/);
});
