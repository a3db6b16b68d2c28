// The `router` command as an integrator uses it: echo and send against DCMTK storescp, and a
// configuration mistake reported with file, line, field and what was expected.
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { datasetOf, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { freePort, REPO, run, startStorescp, tempDir } from '../helpers/processes.ts';

const router = (...args: string[]) => run(process.execPath, [join(REPO, 'scripts/router.ts'), ...args]);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

test('router echo against storescp succeeds; against a closed port it fails clearly', async (t) => {
  const scp = await startStorescp(tempDir());
  t.teardown(scp.stop);
  const ok = await router('echo', `${scp.aeTitle}@127.0.0.1:${scp.port}`);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /C-ECHO .*: 0x0000 Success/);
  const closed = await router('echo', `NOBODY@127.0.0.1:1`);
  t.is(closed.code, 1);
  // One line for a person: no pino JSON, no stack trace.
  t.regex(closed.stderr, /^router: connection to 127\.0\.0\.1:1 failed before the association was established: ECONNREFUSED[^\n]*\n$/);
  t.is(closed.stdout, '');
});

test('router send: a folder of CT (Implicit LE) and MR (Explicit LE) reaches storescp byte-identical', async (t) => {
  const src = tempDir();
  const files = [
    ...writeDataset(join(src, 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.implicitLE, withPrivateTags: true, pixelBytes: 100_000 }),
    ...writeDataset(join(src, 'mr'), { count: 2, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE, modality: 'MR' }),
  ];
  // storescp writes what it received through DCMTK's encoder (explicit-length sequences): give it
  // files that encoder would write unchanged, so byte identity is about what the router sent.
  for (const f of files) t.is((await run('dcmconv', ['+e', f, f])).code, 0);
  const out = tempDir();
  const scp = await startStorescp(out);
  t.teardown(scp.stop);
  const r = await router('send', '--aet', 'ROUTER_SCU', '--max-pdu', '8192', `${scp.aeTitle}@127.0.0.1:${scp.port}`, src);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^5 sent, 0 failed$/m);
  const received = filesUnder(out);
  t.is(received.length, 5);
  const bySop = new Map<string, string>();
  for (const f of received) bySop.set((await readPart10File(f)).sopInstanceUid, f);
  for (const f of files) {
    const got = bySop.get((await readPart10File(f)).sopInstanceUid);
    t.truthy(got, `${f} not received`);
    t.true(Buffer.from(datasetOf(readFileSync(got!))).equals(Buffer.from(datasetOf(readFileSync(f)))));
  }
});

test('router send: per-file status, non-zero exit when a file is not DICOM', async (t) => {
  const src = tempDir();
  writeDataset(join(src, 'ct'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  writeFileSync(join(src, 'notes.txt'), 'not dicom');
  const scp = await startStorescp(tempDir());
  t.teardown(scp.stop);
  const r = await router('send', `${scp.aeTitle}@127.0.0.1:${scp.port}`, src);
  t.is(r.code, 1);
  t.regex(r.stdout, /FAILED +not a DICOM Part-10 file .*notes\.txt/);
  t.regex(r.stdout, /^OK .*0x0000 Success .*0001\.dcm$/m);
  t.regex(r.stdout, /^1 sent, 1 failed$/m);
});

test('router send to an AE title the peer does not accept reports the rejection', async (t) => {
  const src = tempDir();
  writeDataset(join(src, 'ct'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const scp = await startStorescp(tempDir(), { extraArgs: ['--refuse'] });
  t.teardown(scp.stop);
  const r = await router('send', `${scp.aeTitle}@127.0.0.1:${scp.port}`, src);
  t.is(r.code, 1);
  t.regex(r.stderr, /association rejected: rejected-permanent/);
});

test('a bad peer argument is refused with the expected form and the usage, never a stack trace', async (t) => {
  for (const command of ['echo', 'send', 'find', 'move']) {
    const r = await router(command, 'localhost:11112', ...(command === 'send' ? ['x.dcm'] : command === 'move' ? ['--dest', 'WS'] : []));
    t.is(r.code, 1, command);
    t.regex(r.stderr, /^error: command-argument value 'localhost:11112' is invalid for argument 'peer'\. expected AE@host:port/, command);
    t.regex(r.stderr, new RegExp(`Usage: router ${command} \\[options\\] <peer>`), command);
    t.notRegex(r.stderr, /\n\s+at /, `${command}: no stack trace`);
  }
});

test('router --version prints the version; find -k with a misspelt keyword suggests the right one', async (t) => {
  const v = await router('--version');
  t.is(v.code, 0);
  t.regex(v.stdout, /^\d+\.\d+\.\d+\n$/);
  const k = await router('find', 'PACS@127.0.0.1:104', '-k', 'PatientIDD=1');
  t.is(k.code, 1);
  t.regex(k.stderr, /unknown attribute keyword 'PatientIDD' \(did you mean 'PatientID'\?\)/);
});

test('read-only queue commands create nothing where nothing was stored', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'router.yaml');
  writeFileSync(file, 'storage: { dir: ./spool }\nlisteners:\n  - { name: main, aeTitles: [DICOM_ROUTER], port: 11112 }\n');
  const ls = await router('queue', 'ls', '--config', file);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /^nothing queued: no spool at .*spool yet\n$/);
  t.false(existsSync(join(dir, 'spool')));
});

test('router start with an invalid rule file exits 2 with the located problem in plain lines, like a bad config', async (t) => {
  const dir = tempDir();
  mkdirSync(join(dir, 'rules'));
  writeFileSync(join(dir, 'rules', 'bad.yaml'), 'rules:\n  - name: ct\n    then: { forward: [NOBODY] }\n');
  const file = join(dir, 'router.yaml');
  writeFileSync(file, `storage: { dir: ./spool }\nlisteners:\n  - { name: main, aeTitles: [DICOM_ROUTER], port: ${await freePort()}, bind: 127.0.0.1 }\nrouting: { rulesDir: ./rules }\n`);
  const r = await router('start', '--config', file);
  t.is(r.code, 2, r.stdout + r.stderr);
  t.regex(r.stderr, /bad\.yaml:3:\d+: rules\[0\]\.then\.forward\[0\]: unknown peer 'NOBODY'/);
  t.notRegex(r.stderr, /^\{/m, 'no JSON line');
});

test('router start with a bad config exits 2 naming the file, line:column, field and expectation', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'router.yaml');
  writeFileSync(file, 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 70000\n');
  const r = await router('start', '--config', file);
  t.is(r.code, 2);
  t.regex(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:4:11: listeners\\[0\\]\\.port: must be an integer from 1 to 65535 \\(got 70000\\)`));
});

test('router send on a terminal shows one progress line that counts up; in a pipe a plain line per file', async (t) => {
  const src = tempDir();
  writeDataset(join(src, 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const scp = await startStorescp(tempDir());
  t.teardown(scp.stop);
  const cmd = `${process.execPath} ${join(REPO, 'scripts/router.ts')} send ${scp.aeTitle}@127.0.0.1:${scp.port} ${src}`;
  // util-linux `script` runs the command on a pseudo-terminal.
  const tty = await run('script', ['-qfec', cmd, '/dev/null']);
  t.is(tty.code, 0, tty.stdout + tty.stderr);
  t.regex(tty.stdout, /\r\x1b\[K1\/3 \(1 sent, 0 failed\)/);
  t.regex(tty.stdout, /\r\x1b\[K3\/3 \(3 sent, 0 failed\)/);
  t.notRegex(tty.stdout, /^OK /m, 'no line per successful file on a terminal');
  const piped = await router('send', `${scp.aeTitle}@127.0.0.1:${scp.port}`, src);
  t.is(piped.stdout.match(/^OK /gm)?.length, 3);
  t.notRegex(piped.stdout, /\x1b\[K/);
});
