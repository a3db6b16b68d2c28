// A private PostgreSQL server per test (issue 17): initdb into a temp folder owned by the `postgres`
// user (initdb and pg_ctl refuse root), pg_ctl on a free loopback port with its socket in that folder,
// ready once pg_isready says so; stopped (immediate) at the end, or when this process exits.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, READY_MS, run, tempDir } from './processes.ts';

/** Debian puts the server binaries only under /usr/lib/postgresql/NN/bin: the newest there, else PATH. */
export function postgresBin(tool: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const path = join(root, v, 'bin', tool);
    if (existsSync(path)) return path;
  }
  return tool;
}

export type PostgresServer = {
  port: number;
  url: string;
  dir: string;
  /** The server's own log, for failure messages. */
  log(): string;
  /** Stops the server at once (pg_ctl stop -m immediate: like a crash; restart() recovers from the WAL). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  restart(): Promise<void>;
};

const running = new Set<string>();
process.once('exit', () => {
  for (const data of running) spawnSync('runuser', ['-u', 'postgres', '--', postgresBin('pg_ctl'), 'stop', '-D', data, '-m', 'immediate'], { stdio: 'ignore' });
});

const asPostgres = (tool: string, args: string[]) => (process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', postgresBin(tool), ...args]) : run(postgresBin(tool), args));

export async function startPostgres(attempt = 1): Promise<PostgresServer> {
  const dir = tempDir('router-pg-');
  if (process.getuid?.() === 0) chownSync(dir, Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim()), Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim()));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  // --no-sync: initdb's own files only (a throwaway cluster); the server runs with fsync on, its default.
  const init = await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  if (init.code !== 0) throw new Error(`initdb failed (${init.code}):\n${init.stdout}${init.stderr}`);
  const port = await freePort();
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '(no server log)');
  const start = async () => {
    const r = await asPostgres('pg_ctl', ['start', '-W', '-D', data, '-l', logFile, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`]);
    if (r.code !== 0) throw new Error(`pg_ctl start failed (${r.code}):\n${r.stdout}${r.stderr}\n${log()}`);
    running.add(data);
    const deadline = Date.now() + READY_MS;
    for (;;) {
      const ready = await run(postgresBin('pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-t', '2'], { timeoutMs: 10_000 });
      if (ready.code === 0) return;
      if (Date.now() > deadline || /could not create any TCP\/IP sockets|could not bind/.test(log())) throw new Error(`PostgreSQL not ready on 127.0.0.1:${port}:\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    if (!running.has(data)) return;
    await asPostgres('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
    running.delete(data);
  };
  try {
    await start();
  } catch (err) {
    await stop();
    // The free port was taken by another test's server meanwhile: again, on another.
    if (/could not bind|Address already in use/.test(log()) && attempt < 3) return startPostgres(attempt + 1);
    throw err;
  }
  return { port, url: `postgresql://postgres@127.0.0.1:${port}/postgres`, dir, log, stop, restart: start };
}
