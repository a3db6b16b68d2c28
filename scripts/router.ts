// The `router` command: start the router, and the SCU tools integrators use to test peers.
import { Command as Cli, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config/config.ts';
import { createLogger } from '../actors/logger.ts';
import { collectFiles, readPart10File } from '../actors/part10-file.ts';
import type { Part10File } from '../actors/part10-file.ts';
import { startRouter } from '../actors/router.ts';
import { ScuAssociation } from '../actors/scu.ts';
import { formatStatus, statusCategory } from '../protocol/status.ts';
import { VERIFICATION_SOP_CLASS } from '../protocol/uids.ts';

type Peer = { aeTitle: string; host: string; port: number };

/** AE@host:port, the way integrators write a peer. */
export function parsePeer(value: string): Peer {
  const m = /^([^@]{1,16})@(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new InvalidArgumentError(`expected AE@host:port (AE title 1-16 characters, port 1-65535), got '${value}'`);
  }
  return { aeTitle: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

const program = new Cli('router').description('dicom-router: DICOM store-and-forward router').showHelpAfterError();

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
    const router = await startRouter(config, { logger: log }).catch((err: Error) => {
      log.fatal({ err: err.message }, 'router could not start');
      process.exit(1);
    });
    log.info({ ports: Object.fromEntries(router.ports), storage: config.storage.dir }, 'router started');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      void router.stop().then(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

const scuOptions = (cmd: Cli) =>
  cmd
    .option('--aet <title>', 'our (calling) AE title', 'DICOM_ROUTER')
    .option('--max-pdu <bytes>', 'maximum PDU length we receive', (v) => Number(v), 16384)
    .option('--timeout <seconds>', 'DIMSE response timeout', (v) => Number(v), 60);

scuOptions(program.command('echo <peer>').description('C-ECHO a peer AE (AE@host:port)')).action(
  async (peerArg: string, opts: { aet: string; maxPdu: number; timeout: number }) => {
    const peer = parsePeer(peerArg);
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn', process.stderr);
    const scu = await ScuAssociation.open({
      ...peer,
      calledAeTitle: peer.aeTitle,
      callingAeTitle: opts.aet,
      contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'] }],
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

scuOptions(program.command('send <peer> <paths...>').description('C-STORE files and folders to a peer AE over one association')).action(
  async (peerArg: string, paths: string[], opts: { aet: string; maxPdu: number; timeout: number }) => {
    const peer = parsePeer(peerArg);
    const log = createLogger(process.env.LOG_LEVEL ?? 'warn', process.stderr);
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
      if (!ok || !progress || outcome.status !== 0) console.log(`${ok ? 'OK     ' : 'FAILED '} ${what}${comment}  ${f.path}`);
    }
    await scu.release();
    console.log(`${sent} sent, ${failed} failed`);
    process.exit(failed > 0 ? 1 : 0);
  },
);

function fail(err: Error): never {
  process.stderr.write(`router: ${err.message}\n`);
  process.exit(1);
}

await program.parseAsync(process.argv);
