// Test helpers for real peers: free loopback ports, DCMTK tools and the router as child processes.
// Every server a test starts listens on 127.0.0.1 and is stopped by the test.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const REPO = resolve(import.meta.dirname, '../..');
/** DCMTK (3.6.7 on Debian) leaves Nagle on unless told; see DESIGN.md. */
export const DCMTK_ENV = { ...process.env, TCP_NODELAY: '1' };

/** Folders made by tempDir in this process: removed when it exits (KEEP_TEST_DIRS=1 keeps them to look at). */
const made: string[] = [];
process.once('exit', () => {
  if (process.env.KEEP_TEST_DIRS === '1') return;
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh folder under the system's temp folder, removed when this process exits: a spool preallocates
 * 16 MiB journal segments, and a whole test run leaving its folders behind filled this machine's disk.
 */
export function tempDir(prefix = 'dicom-router-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Readiness ceilings: generous, because a test waits for readiness, never for a time, and a busy
 * machine (two `npm test` runs side by side, load average 20 on 2 cores) starts processes slowly.
 * TEST_READY_SECONDS raises them further.
 */
export const READY_MS = Number(process.env.TEST_READY_SECONDS ?? 90) * 1000;

export async function waitForPort(port: number, timeoutMs = READY_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type RunResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Run a command to completion, capturing its output (bounded in time). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((res, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? DCMTK_ENV, cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}

export type Started = { child: ChildProcess; output: () => string; stop: () => Promise<void> };

/** Start a long-running process and keep its output. */
export function startProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Started {
  const child = spawn(cmd, args, { env: opts.env ?? DCMTK_ENV, cwd: opts.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** DCMTK storescp writing into `dir`, accepting every transfer syntax, on a free port. */
/** A DICOM server started as a process, up once its port accepts connections, fed with storescu. */
export type DicomServer = Started & { port: number; aeTitle: string; dir: string; store(files: string[]): Promise<void> };

/** Starts `cmd` and waits for `port`; on failure stops it and throws with its output. */
export async function startDicomServer(
  name: string,
  cmd: string,
  args: string[],
  where: { port: number; aeTitle: string; dir: string; startTimeoutMs?: number },
): Promise<DicomServer> {
  const { port, aeTitle, dir } = where;
  const proc = startProcess(cmd, args, { cwd: dir, env: DCMTK_ENV });
  try {
    await waitForPort(port, where.startTimeoutMs ?? READY_MS);
    // The port answering is not enough: another test's server may have taken it between freePort() and
    // this one's bind (this one then exits). A C-ECHO that this server answers is.
    const deadline = Date.now() + (where.startTimeoutMs ?? READY_MS);
    for (;;) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`it exited (port ${port} taken?)`);
      if ((await run('echoscu', ['-aec', aeTitle, '127.0.0.1', String(port)], { timeoutMs: 10_000 })).code === 0) break;
      if (Date.now() > deadline) throw new Error(`no C-ECHO answer on port ${port}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await proc.stop();
    throw new Error(`${name} did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return {
    ...proc,
    port,
    aeTitle,
    dir,
    async store(files: string[]) {
      const r = await run('storescu', ['-aec', aeTitle, '127.0.0.1', String(port), ...files]);
      if (r.code !== 0) throw new Error(`storescu to ${name} failed (${r.code}): ${r.stderr}`);
    },
  };
}

export async function startStorescp(dir: string, opts: { aeTitle?: string; extraArgs?: string[]; port?: number } = {}): Promise<Started & { port: number; aeTitle: string }> {
  const port = opts.port ?? (await freePort());
  const aeTitle = opts.aeTitle ?? 'STORESCP';
  const proc = startProcess('storescp', ['--aetitle', aeTitle, '+xa', '--output-directory', dir, ...(opts.extraArgs ?? []), String(port)]);
  try {
    await waitForPort(port);
  } catch (err) {
    await proc.stop();
    throw new Error(`storescp did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return { ...proc, port, aeTitle };
}

/** Wait until a started process prints `text` (or exits, or the time runs out). */
export async function waitForOutput(proc: Started, text: string, timeoutMs = READY_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`process exited (${proc.child.exitCode ?? proc.child.signalCode}):\n${proc.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`no '${text}' after ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export type RouterUnderTest = Started & { port: number; dataDir: string; configFile: string; aeTitle: string };

/** Start the router (scripts/router.ts, Node 24) with a listener on a free loopback port. */
export async function startRouter(
  opts: {
    dataDir?: string; listener?: Record<string, unknown>; fsync?: boolean; logLevel?: string; peers?: Record<string, unknown>[]; rulesDir?: string; port?: number; attempt?: number;
    /** The inspector's settings: enabled on a free port of its own. */
    inspect?: Record<string, unknown>;
    /** More top-level sections (e.g. `cluster`, or `inspect` on a port of the test's choosing). */
    extra?: Record<string, unknown>;
  } = {},
): Promise<RouterUnderTest> {
  const dir = tempDir();
  const dataDir = opts.dataDir ?? join(dir, 'data');
  const port = opts.port ?? (await freePort());
  const listener = { name: 'main', aeTitles: ['DICOM_ROUTER'], port, bind: '127.0.0.1', ...opts.listener };
  const configFile = join(dir, 'router.yaml');
  writeFileSync(
    configFile,
    stringify({
      storage: { dir: dataDir, fsync: opts.fsync ?? true },
      log: { level: opts.logLevel ?? 'info' },
      listeners: [listener],
      peers: opts.peers ?? [],
      routing: { rulesDir: opts.rulesDir ?? join(dir, 'routing-rules') },
      ...(opts.inspect ? { inspect: { enabled: true, port: await freePort(), ...opts.inspect } } : {}),
      ...opts.extra,
    }),
  );
  const proc = startProcess(process.execPath, [join(REPO, 'scripts/router.ts'), 'start', '--config', configFile]);
  try {
    await waitForOutput(proc, '"msg":"router started"');
  } catch (err) {
    await proc.stop();
    // The free port was taken by another test's server before the router bound it: again, on another.
    if (opts.port === undefined && (opts.listener?.port === undefined) && proc.output().includes('EADDRINUSE') && (opts.attempt ?? 1) < 3) {
      return startRouter({ ...opts, attempt: (opts.attempt ?? 1) + 1 });
    }
    throw new Error(`router did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return { ...proc, port: Number(listener.port), dataDir, configFile, aeTitle: (listener.aeTitles as string[])[0] };
}

export function writeConfig(dir: string, config: unknown): string {
  const file = join(dir, 'router.yaml');
  writeFileSync(file, stringify(config));
  return file;
}
