// `router inspect`: the running router's actor tree once as JSON, once as text, and live (a pipe gets
// one snapshot per change); the token is taken from the configuration.
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, REPO, run, startProcess, tempDir, waitForOutput, writeConfig } from '../helpers/processes.ts';

const ROUTER = join(REPO, 'scripts/router.ts');

test('router inspect --json, --once and live against a running router with a token', async (t) => {
  const dir = tempDir();
  // A free port may be taken by another test run's server before the router binds it: then new ports.
  let inspectPort = 0;
  let configFile = '';
  let router: ReturnType<typeof startProcess> | undefined;
  for (let attempt = 1; !router; attempt++) {
    inspectPort = await freePort();
    configFile = writeConfig(dir, {
      storage: { dir: join(dir, 'data'), fsync: false },
      listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: await freePort(), bind: '127.0.0.1' }],
      routing: { rulesDir: join(dir, 'rules') },
      inspect: { enabled: true, port: inspectPort, token: 'token-for-the-cli-test' },
    });
    const started = startProcess(process.execPath, [ROUTER, 'start', '--config', configFile]);
    try {
      await waitForOutput(started, '"msg":"router started"');
      router = started;
    } catch (err) {
      await started.stop();
      if (attempt >= 3 || !started.output().includes('EADDRINUSE')) throw err;
    }
  }
  t.teardown(() => router.stop());
  t.regex(router.output(), new RegExp(`"inspector":"http://127.0.0.1:${inspectPort}"`));

  const json = await run(process.execPath, [ROUTER, 'inspect', '--json', '-c', configFile]);
  t.is(json.code, 0, json.stderr);
  const tree = JSON.parse(json.stdout);
  t.is(tree.id, 'router');
  t.deepEqual(tree.children.map((c: { id: string }) => c.id), ['listener:main']);

  const text = await run(process.execPath, [ROUTER, 'inspect', '--once', '-c', configFile]);
  t.regex(text.stdout, /^router \(router\) \[running\]\n {2}listener:main \(listener\) \[listening\] 0 open, 0 accepted$/m);

  const noToken = await run(process.execPath, [ROUTER, 'inspect', '--json', '--url', `http://127.0.0.1:${inspectPort}`]);
  t.is(noToken.code, 1);
  t.regex(noToken.stderr, /wants a token/);

  // Live: the first snapshot arrives at once.
  const live = spawn(process.execPath, [ROUTER, 'inspect', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  live.stdout.on('data', (d) => (out += d));
  const deadline = Date.now() + 10_000;
  while (!out.includes('listener:main') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  live.kill('SIGINT');
  t.regex(out, /^--- \d{4}-\d\d-\d\dT.*\nrouter \(router\) \[running\]/m);
});
