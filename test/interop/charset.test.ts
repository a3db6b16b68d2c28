// Issue 12 item 2 against real peers: a PS3.5 H.3.1 instance (\ISO 2022 IR 87, as Canon Virtual
// Place and PixelMed send it) written by DCMTK's dcmodify; rules on its Japanese name through
// `router rules explain` and on the wire (storescu → router → storescp); a modification IR 87 can
// hold (written with its escape sequences) and one it cannot (the copy arrives as ISO_IR 192).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readHeaderKeys, readPart10File } from '../../actors/ingest/part10-file.ts';
import { makeInstance, SOP, TS } from '../helpers/dicom-files.ts';
import { REPO, run, startRouter, startStorescp, tempDir } from '../helpers/processes.ts';

const NAME = 'Yamada^Tarou=山田^太郎=やまだ^たろう';
// PS3.5 H.3.1, byte for byte.
const H31 = 'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B';
const QUICK_RETRY = { attempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 };

const RULES = `rules:
  - name: yamada-exact
    continue: true
    when: { attribute: PatientName, equals: '${NAME}' }
    then:
      forward: [JIS]
      modify:
        - set: { attribute: StudyDescription, value: '頭部' }
  - name: yamada-wildcard
    continue: true
    when: { attribute: PatientName, wildcard: '*山田*' }
    then:
      forward: [UTF8]
      modify:
        - set: { attribute: StudyDescription, value: 'Kopf Bär' }
  - name: yamada-strict
    when: { attribute: PatientName, wildcard: 'Yamada*' }
    then:
      forward: [STRICT]
      modify:
        - set: { attribute: StudyDescription, value: 'Kopf Bär' }
      charset: refuse
  - name: suzuki
    when: { attribute: PatientName, wildcard: '*鈴木*' }
    then: { forward: [JIS] }
`;

/** The H.3.1 instance, written by DCMTK: our test instance, then dcmodify sets (0008,0005) and the raw ISO 2022 name. */
async function h31Instance(dir: string): Promise<string> {
  const file = join(dir, 'h31.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 512, studyDescription: 'CT' }));
  const r = await run('dcmodify', ['-nb', '-i', '(0008,0005)=\\ISO 2022 IR 87', '-i', `(0010,0010)=${H31}`, file]);
  if (r.code !== 0) throw new Error(`dcmodify failed: ${r.stdout}${r.stderr}`);
  return file;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function eventually(t: ExecutionContext, what: string, check: () => boolean, output: () => string, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for: ${what}\n${output()}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test('rules explain matches equals and wildcard on the ISO 2022 IR 87 name and says how each modification will be written', async (t) => {
  const dir = tempDir();
  const file = await h31Instance(dir);
  const raw = await run('dcmdump', ['-q', file]);
  t.true(raw.stdout.includes(`(0010,0010) PN [${H31}]`), 'DCMTK wrote the H.3.1 bytes as given');
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'main.yaml'), RULES);
  const config = join(dir, 'router.yaml');
  const peers = ['JIS', 'UTF8', 'STRICT'].map((aeTitle) => ({ aeTitle, host: '127.0.0.1', port: 1 }));
  writeFileSync(config, stringify({ storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112 }], peers, routing: { rulesDir } }));
  const r = await run(process.execPath, [join(REPO, 'scripts/router.ts'), 'rules', 'explain', file, '--config', config]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.regex(r.stdout, /✔ yamada-exact .*: matched\n +✔ PatientName = 'Yamada\^Tarou=山田\^太郎=やまだ\^たろう'/);
  t.regex(r.stdout, /✔ yamada-wildcard .*: matched\n +✔ PatientName matches wildcard '\*山田\*'/);
  t.regex(r.stdout, /– suzuki .*not evaluated/);
  t.regex(r.stdout, /forward to JIS, rule 'yamada-exact', with 1 modification:\n +set StudyDescription = '頭部'\n +→ StudyDescription will be written as '頭部' in \\ISO 2022 IR 87/);
  t.regex(r.stdout, /forward to UTF8, rule 'yamada-wildcard', with 1 modification:\n +set StudyDescription = 'Kopf Bär'\n +→ StudyDescription 'Kopf Bär' cannot be written in \\ISO 2022 IR 87: the dataset will be converted to ISO_IR 192/);
  t.regex(r.stdout, /forward to STRICT, rule 'yamada-strict', with 1 modification:\n +set StudyDescription = 'Kopf Bär'\n +charset: refuse\n +→ StudyDescription 'Kopf Bär' cannot be written in \\ISO 2022 IR 87: refused \(charset: refuse\); this forward will become a dead letter/);
});

test('storescu → router → storescp: the rules match on the wire; 頭部 arrives in ISO 2022 IR 87, Kopf Bär in a dataset converted to ISO_IR 192 or, refused, as a dead letter; the log is JSON only', async (t) => {
  const src = tempDir();
  const file = await h31Instance(src);
  const [jisDir, utf8Dir, strictDir] = [tempDir(), tempDir(), tempDir()];
  const jis = await startStorescp(jisDir, { aeTitle: 'JIS' });
  t.teardown(jis.stop);
  const utf8 = await startStorescp(utf8Dir, { aeTitle: 'UTF8' });
  t.teardown(utf8.stop);
  const strict = await startStorescp(strictDir, { aeTitle: 'STRICT' });
  t.teardown(strict.stop);
  const rulesDir = tempDir('rules-');
  writeFileSync(join(rulesDir, 'main.yaml'), RULES);
  const router = await startRouter({
    peers: [
      { aeTitle: 'JIS', host: '127.0.0.1', port: jis.port, retry: QUICK_RETRY },
      { aeTitle: 'UTF8', host: '127.0.0.1', port: utf8.port, retry: QUICK_RETRY },
      { aeTitle: 'STRICT', host: '127.0.0.1', port: strict.port, retry: QUICK_RETRY },
    ],
    rulesDir,
  });
  t.teardown(router.stop);
  const sent = await run('storescu', ['-aet', 'CANON_VP', '-aec', 'DICOM_ROUTER', '127.0.0.1', String(router.port), file]);
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  const delivered = () => router.output().match(/"msg":"delivered"/g)?.length ?? 0;
  const dead = () => router.output().split('\n').filter((l) => l.includes('"msg":"dead letter"'));
  if (!(await eventually(t, 'two copies delivered, one dead letter', () => delivered() === 2 && dead().length === 1, router.output))) return;
  t.regex(dead()[0], /"Kopf Bär\\" cannot be written in Specific Character Set \\"\\\\\\\\ISO 2022 IR 87\\"; the rule says charset: refuse/);
  t.deepEqual(filesUnder(strictDir), [], 'nothing reached the refusing rule\'s peer');

  const [jisFile] = filesUnder(jisDir);
  const jisKeys = await readHeaderKeys(await readPart10File(jisFile));
  t.is(jisKeys.specificCharacterSet, '\\ISO 2022 IR 87');
  t.is(jisKeys.patientName, NAME);
  t.is(jisKeys.studyDescription, '頭部');
  const jisDump = (await run('dcmdump', ['-q', jisFile])).stdout;
  t.true(jisDump.includes('(0008,1030) LO [\x1b$BF,It\x1b(B]'), jisDump); // JIS X 0208 0x462C 0x4974, escapes around it
  t.true(jisDump.includes(`(0010,0010) PN [${H31}]`), 'the name is forwarded byte for byte');

  const [utf8File] = filesUnder(utf8Dir);
  const utf8Dump = await run('dcmdump', ['-q', '+U8', utf8File]);
  t.is(utf8Dump.stderr, '');
  t.regex(utf8Dump.stdout, /\(0008,0005\) CS \[ISO_IR 192\]/);
  t.regex(utf8Dump.stdout, /\(0008,1030\) LO \[Kopf Bär\]/);
  t.true(utf8Dump.stdout.includes(`(0010,0010) PN [${NAME}]`), utf8Dump.stdout);
  t.false(utf8Dump.stdout.includes('\x1b'), 'no escape sequence is left');

  // Nothing but pino's JSON: no dcmjs warning about character sets, no other console output.
  const lines = router.output().split('\n').filter((l) => l !== '');
  t.true(lines.length > 0);
  for (const line of lines) t.notThrows(() => JSON.parse(line), `not JSON: ${line}`);
  t.false(router.output().includes('character sets is not supported'));
});
