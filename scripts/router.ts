// The `router` command: start the router, and the SCU tools integrators use to test peers.
import './v8-memory.ts'; // first: V8's heap flags before anything allocates much
import { Command as Cli, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config/config.ts';
import { createLogger } from '../actors/observe/logger.ts';
import { collectFiles, readPart10File } from '../actors/ingest/part10-file.ts';
import type { Part10File } from '../actors/ingest/part10-file.ts';
import { startRouter } from '../actors/router.ts';
import { ScuAssociation } from '../actors/net/scu.ts';
import { formatStatus, statusCategory } from '../protocol/status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION_SOP_CLASS } from '../protocol/uids.ts';
import { readFileSync } from 'node:fs';
import { readHeaderKeys } from '../actors/ingest/part10-file.ts';
import { evaluate, explainText } from '../routing/evaluate.ts';
import { loadRuleFiles, RulesError } from '../routing/rules-loader.ts';
import { addQrCommands } from './qr-commands.ts';
import { addQueueCommands } from './queue-commands.ts';
import { createInspection } from '../actors/observe/inspector.ts';
import { gracefulStop } from '../actors/shutdown.ts';

type Peer = { aeTitle: string; host: string; port: number };

/** AE@host:port, the way integrators write a peer. */
export function parsePeer(value: string): Peer {
  const m = /^([^@]{1,16})@(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new InvalidArgumentError(`expected AE@host:port (AE title 1-16 characters, port 1-65535), got '${value}'`);
  }
  return { aeTitle: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const program = new Cli('router').description('dicom-router: DICOM store-and-forward router').version(version).showHelpAfterError();

/** `n thing` or `n things`. */
export function count(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** Logs of the SCU commands: none unless LOG_LEVEL asks (their output is for people). */
const cliLogger = () => createLogger(process.env.LOG_LEVEL ?? 'silent', process.stderr);

program
  .command('start')
  .description('run the router with a configuration file')
  .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
  .action(async (opts: { config: string }) => {
    let config;
    try {
      config = loadConfig(opts.config);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const log = createLogger(config.log.level);
    const inspection = createInspection(config, log);
    const router = await startRouter(config, { logger: log, inspect: inspection.inspect }).catch((err: Error) => {
      // Located mistakes in the files an integrator edits: plain lines and exit 2, as for the configuration.
      if (err instanceof RulesError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      log.fatal({ err: err.message }, 'router could not start');
      process.exit(1);
    });
    const inspector = await inspection.attach(router).catch(async (err: Error) => {
      log.fatal({ err: err.message, bind: config.inspect.bind, port: config.inspect.port }, 'inspector could not start');
      await router.stop(0);
      process.exit(1);
    });
    log.info({ ports: Object.fromEntries(router.ports), storage: config.storage.dir, ...(inspector ? { inspector: inspector.url } : {}) }, 'router started');
    let stopping = false;
    // Exit codes: 0 drained cleanly, 3 the grace period ended with associations cut, 130 a second signal aborted.
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        process.exit(130);
      }
      stopping = true;
      inspection.setShuttingDown();
      log.info({ signal, graceSeconds: config.shutdown.graceSeconds }, 'stopping: no new associations, in-flight transactions may finish');
      void gracefulStop(router, { graceMs: config.shutdown.graceSeconds * 1000, logger: log })
        .then(async (result) => {
          await inspection.stop();
          log.info(result, result.clean ? 'stopped cleanly' : 'stopped: grace period over, associations were cut');
          process.exit(result.clean ? 0 : 3);
        })
        .catch((err: Error) => {
          log.fatal({ err: err.message }, 'shutdown failed');
          process.exit(1);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

const scuOptions = (cmd: Cli) =>
  cmd
    .option('--aet <title>', 'our (calling) AE title', 'DICOM_ROUTER')
    .option('--max-pdu <bytes>', 'maximum PDU length we receive', (v) => Number(v), 16384)
    .option('--timeout <seconds>', 'DIMSE response timeout', (v) => Number(v), 60);

scuOptions(program.command('echo').description('C-ECHO a peer AE').argument('<peer>', 'AE@host:port', parsePeer)).action(
  async (peer: Peer, opts: { aet: string; maxPdu: number; timeout: number }) => {
    const peerArg = `${peer.aeTitle}@${peer.host}:${peer.port}`;
    const log = cliLogger();
    const scu = await ScuAssociation.open({
      ...peer,
      calledAeTitle: peer.aeTitle,
      callingAeTitle: opts.aet,
      contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] }],
      maxPduLength: opts.maxPdu,
      dimseTimeoutMs: opts.timeout * 1000,
      logger: log,
    }).catch(fail);
    const outcome = await scu.echo();
    await scu.release();
    if (outcome.status === undefined) fail(new Error(outcome.failure ?? 'no response'));
    console.log(`C-ECHO ${peerArg}: ${formatStatus(outcome.status!)}`);
    process.exit(statusCategory(outcome.status!) === 'success' ? 0 : 1);
  },
);

scuOptions(program.command('send').description('C-STORE files and folders to a peer AE over one association').argument('<peer>', 'AE@host:port', parsePeer).argument('<paths...>', 'files and folders')).action(
  async (peer: Peer, paths: string[], opts: { aet: string; maxPdu: number; timeout: number }) => {
    const log = cliLogger();
    const files: Part10File[] = [];
    let failed = 0;
    for (const path of await collectFiles(paths).catch(fail)) {
      try {
        files.push(await readPart10File(path));
      } catch (err) {
        failed++;
        console.log(`FAILED  not a DICOM Part-10 file (${(err as Error).message})  ${path}`);
      }
    }
    if (files.length === 0) fail(new Error('no DICOM files to send'));
    // One presentation context per (SOP class, transfer syntax) the files use.
    const contexts = new Map<string, { abstractSyntax: string; transferSyntaxes: string[] }>();
    for (const f of files) contexts.set(`${f.sopClassUid}|${f.transferSyntaxUid}`, { abstractSyntax: f.sopClassUid, transferSyntaxes: [f.transferSyntaxUid] });
    const scu = await ScuAssociation.open({
      ...peer,
      calledAeTitle: peer.aeTitle,
      callingAeTitle: opts.aet,
      contexts: [...contexts.values()],
      maxPduLength: opts.maxPdu,
      dimseTimeoutMs: opts.timeout * 1000,
      logger: log,
    }).catch(fail);
    let sent = 0;
    const progress = process.stdout.isTTY;
    for (const f of files) {
      const outcome = await scu.store(f);
      const ok = outcome.status !== undefined && statusCategory(outcome.status) !== 'failure';
      if (ok) sent++;
      else failed++;
      const what = outcome.status !== undefined ? formatStatus(outcome.status) : outcome.failure;
      const comment = outcome.errorComment ? ` (${outcome.errorComment})` : '';
      if (!ok || !progress || outcome.status !== 0) {
        if (progress) process.stdout.write('\r\x1b[K');
        console.log(`${ok ? 'OK     ' : 'FAILED '} ${what}${comment}  ${f.path}`);
      }
      // On a terminal, one line that counts up; in a pipe or a log, a plain line per file (above).
      if (progress) process.stdout.write(`\r\x1b[K${sent + failed}/${files.length} (${sent} sent, ${failed} failed)`);
    }
    if (progress) process.stdout.write('\r\x1b[K');
    await scu.release();
    console.log(`${sent} sent, ${failed} failed`);
    process.exit(failed > 0 ? 1 : 0);
  },
);

/** The configuration, or exit 2 with its located problems. */
function configOrExit(file: string) {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const rules = program.command('rules').description('routing rules: check them, or explain what they do with an instance');

rules
  .command('check')
  .description('validate every rule file against the schema and the configured peers')
  .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
  .action((opts: { config: string }) => {
    const config = configOrExit(opts.config);
    try {
      const set = loadRuleFiles(config.routing.rulesDir, { peers: config.peers.map((p) => p.name) });
      console.log(`${count(set.rules.length, 'rule')} in ${count(set.files.length, 'file')}: OK (${config.routing.rulesDir})`);
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
  });

rules
  .command('explain <file>')
  .description('which rules match a DICOM file, which conditions failed and why, and what would be sent where (sends nothing)')
  .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
  .option('--calling-ae <title>', 'calling AE title of the imagined association', 'MODALITY')
  .option('--called-ae <title>', 'called AE title (default: the listener\'s first)')
  .option('--listener <name>', 'listener name (default: the first)')
  .option('--source <address>', 'source address', '127.0.0.1')
  .action(async (file: string, opts: { config: string; callingAe: string; calledAe?: string; listener?: string; source: string }) => {
    const config = configOrExit(opts.config);
    let set;
    try {
      set = loadRuleFiles(config.routing.rulesDir, { peers: config.peers.map((p) => p.name) });
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    const listener = config.listeners.find((l) => l.name === (opts.listener ?? config.listeners[0].name));
    if (!listener) fail(new Error(`no listener named '${opts.listener}'`));
    const part10 = await readPart10File(file).catch(fail);
    const keys = await readHeaderKeys(part10).catch(fail);
    const decision = evaluate(set, {
      association: { callingAeTitle: opts.callingAe, calledAeTitle: opts.calledAe ?? listener!.aeTitles[0], listener: listener!.name, remoteAddress: opts.source },
      dataset: keys.dataset,
    });
    console.log(explainText(decision, keys.dataset));
    for (const w of keys.warnings) console.log(`  note: ${w}`);
  });

program
  .command('inspect')
  .description("show the running router's actor tree live (from its inspector server), or once as JSON")
  .option('-c, --config <file>', 'configuration file (for the inspector address and token)', 'config/router.yaml')
  .option('--url <url>', 'inspector base URL (default: from the configuration)')
  .option('--token <token>', 'bearer token (default: inspect.token of the configuration)')
  .option('--json', 'print the tree once as JSON')
  .option('--once', 'print the tree once as text')
  .action(async (opts: { config: string; url?: string; token?: string; json?: boolean; once?: boolean }) => {
    const { inspectorUrl, runInspect } = await import('./inspect-cli.ts');
    const config = opts.url ? undefined : configOrExit(opts.config);
    const url = opts.url ?? inspectorUrl(config!);
    await runInspect(url, { ...opts, token: opts.token ?? config?.inspect.token }).catch(fail);
    process.exit(0);
  });

program
  .command('certs')
  .description('TLS material')
  .command('init [dir]')
  .description('create a lab CA, a server and a client certificate (TEST material, not for production) in DIR (default certs/lab)')
  .option('--days <n>', 'validity of the server and client certificates, in days', (v) => Number(v), 365)
  .option('--host <names...>', 'more host names or IP addresses for the server certificate (localhost, 127.0.0.1, ::1 and this host are always in)')
  .option('--force', 'overwrite existing files')
  .action(async (dir: string | undefined, opts: { days: number; host?: string[]; force?: boolean }) => {
    const { initLabCerts, labSummary } = await import('./certs.ts');
    try {
      console.log(labSummary(initLabCerts(dir ?? 'certs/lab', { days: opts.days, hosts: opts.host, force: opts.force })));
    } catch (err) {
      fail(err as Error);
    }
  });

addQrCommands(program, { parsePeer, fail, configOrExit });
addQueueCommands(program, { fail, configOrExit, count });

function fail(err: Error): never {
  process.stderr.write(`router: ${err.message}\n`);
  process.exit(1);
}

await program.parseAsync(process.argv);
