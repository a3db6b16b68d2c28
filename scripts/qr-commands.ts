// `router find`, `router move` (Query/Retrieve SCU by hand, for integrators testing an archive) and
// `router prefetch ls` (the prefetch jobs recorded in the spool's LMDB). Output: a table, or --json.
import type { Command as Cli } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { RouterConfig } from '../config/config.ts';
import { createLogger } from '../actors/observe/logger.ts';
import { PrefetchService } from '../actors/jobs/prefetch.ts';
import { cFind, cMove, qrContexts } from '../actors/jobs/qr-scu.ts';
import type { QrModel } from '../actors/jobs/qr-scu.ts';
import { ScuAssociation } from '../actors/net/scu.ts';
import { Spool } from '../actors/ingest/spool.ts';
import { keywordInfo } from '../routing/attributes.ts';
import { unknownKeyword } from '../routing/parse-attribute.ts';
import { QUERY_LEVELS } from '../protocol/dataset-encode.ts';
import type { QueryLevel } from '../protocol/dataset-encode.ts';

type Peer = { aeTitle: string; host: string; port: number };
export type QrCliHelpers = { parsePeer(v: string): Peer; fail(err: Error): never; configOrExit(file: string): RouterConfig };

/** Return keys asked for by default at each level, besides the -k ones. */
const DEFAULT_KEYS: Record<QueryLevel, string[]> = {
  PATIENT: ['PatientID', 'PatientName', 'PatientBirthDate'],
  STUDY: ['PatientID', 'PatientName', 'StudyInstanceUID', 'StudyDate', 'StudyTime', 'AccessionNumber', 'ModalitiesInStudy', 'StudyDescription'],
  SERIES: ['StudyInstanceUID', 'SeriesInstanceUID', 'Modality', 'SeriesNumber', 'SeriesDescription'],
  IMAGE: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID', 'SOPClassUID', 'InstanceNumber'],
};

function keyValue(v: string, previous: Record<string, string> = {}): Record<string, string> {
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:=(.*))?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected Keyword=value or Keyword (a return key), got '${v}'`);
  if (!keywordInfo(m[1])) throw new InvalidArgumentError(unknownKeyword(m[1]));
  return { ...previous, [m[1]]: m[2] ?? '' };
}

function level(v: string): QueryLevel {
  const l = v.toUpperCase() as QueryLevel;
  if (!QUERY_LEVELS.includes(l)) throw new InvalidArgumentError(`level must be one of ${QUERY_LEVELS.join(', ')}`);
  return l;
}

function model(v: string): QrModel {
  if (v !== 'study-root' && v !== 'patient-root') throw new InvalidArgumentError('model must be study-root or patient-root');
  return v;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(show).join('\\');
  if (typeof v === 'object') return String((v as { Alphabetic?: string }).Alphabetic ?? JSON.stringify(v));
  return String(v).trim();
}

/** A plain text table: a header row, the rows, columns padded to their widest cell. */
export function table(columns: string[], rows: string[][]): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function addQrCommands(program: Cli, h: QrCliHelpers): void {
  const scu = (cmd: Cli) =>
    cmd
      .option('--aet <title>', 'our (calling) AE title', 'DICOM_ROUTER')
      .option('--model <model>', 'study-root or patient-root', model, 'study-root' as QrModel)
      .option('--timeout <seconds>', 'DIMSE response timeout (between responses)', (v) => Number(v), 60)
      .option('--json', 'print JSON');

  scu(program.command('find').description('C-FIND a Query/Retrieve SCP').argument('<peer>', 'AE@host:port', h.parsePeer))
    .option('--level <level>', 'PATIENT, STUDY, SERIES or IMAGE', level, 'STUDY' as QueryLevel)
    .option('-k, --key <Keyword=value>', 'matching key (value) or return key (no value); repeatable', keyValue, {})
    .action(async (peer: Peer, opts: { aet: string; model: QrModel; timeout: number; json?: boolean; level: QueryLevel; key: Record<string, string> }) => {
      const log = createLogger(process.env.LOG_LEVEL ?? 'silent', process.stderr);
      const keys = { ...Object.fromEntries(DEFAULT_KEYS[opts.level].map((k) => [k, ''])), ...opts.key };
      const assoc = await ScuAssociation.open({
        ...peer, calledAeTitle: peer.aeTitle, callingAeTitle: opts.aet, contexts: qrContexts(opts.model, 'find'), dimseTimeoutMs: opts.timeout * 1000, logger: log,
      }).catch(h.fail);
      let result;
      try {
        result = await cFind(assoc, opts.level, keys, opts.model).done;
      } catch (err) {
        assoc.abort();
        h.fail(err as Error);
      }
      await assoc.release().catch(() => assoc.abort());
      if (opts.json) console.log(JSON.stringify({ ...result, matches: result.matches.map(({ _vrMap, ...m }) => m) }, null, 2));
      else {
        const columns = Object.keys(keys).filter((k) => k !== 'SpecificCharacterSet');
        console.log(table(columns, result.matches.map((m) => columns.map((c) => show(m[c])))));
        console.log(`${result.matches.length} match${result.matches.length === 1 ? '' : 'es'}; ${result.result}${result.reason ? `: ${result.reason}` : ''}`);
      }
      process.exit(result.result === 'success' ? 0 : 1);
    });

  scu(program.command('move').description('C-MOVE a study (or series, or instance) from a Query/Retrieve SCP to a destination AE').argument('<peer>', 'AE@host:port', h.parsePeer))
    .requiredOption('--dest <aeTitle>', 'Move Destination AE title (known to the SCP)')
    .option('--study <uid>', 'Study Instance UID')
    .option('--series <uid>', 'Series Instance UID (with --study)')
    .option('--instance <uid>', 'SOP Instance UID (with --study and --series)')
    .option('--patient <id>', 'PatientID (patient-root model)')
    .action(async (peer: Peer, opts: { aet: string; model: QrModel; timeout: number; json?: boolean; dest: string; study?: string; series?: string; instance?: string; patient?: string }) => {
      if (!opts.study && !(opts.model === 'patient-root' && opts.patient)) h.fail(new Error('give --study UID (or --patient ID with --model patient-root)'));
      const lvl: QueryLevel = opts.instance ? 'IMAGE' : opts.series ? 'SERIES' : opts.study ? 'STUDY' : 'PATIENT';
      const keys: Record<string, string> = {
        ...(opts.patient ? { PatientID: opts.patient } : {}),
        ...(opts.study ? { StudyInstanceUID: opts.study } : {}),
        ...(opts.series ? { SeriesInstanceUID: opts.series } : {}),
        ...(opts.instance ? { SOPInstanceUID: opts.instance } : {}),
      };
      const log = createLogger(process.env.LOG_LEVEL ?? 'silent', process.stderr);
      const assoc = await ScuAssociation.open({
        ...peer, calledAeTitle: peer.aeTitle, callingAeTitle: opts.aet, contexts: qrContexts(opts.model, 'move'), dimseTimeoutMs: opts.timeout * 1000, logger: log,
      }).catch(h.fail);
      let result;
      try {
        result = await cMove(assoc, opts.dest, lvl, keys, opts.model).done;
      } catch (err) {
        assoc.abort();
        h.fail(err as Error);
      }
      await assoc.release().catch(() => assoc.abort());
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else {
        const s = result.suboperations;
        console.log(table(['result', 'status', 'completed', 'failed', 'warning', 'reason'], [[
          result.result, result.status !== undefined ? `0x${result.status.toString(16).toUpperCase().padStart(4, '0')}` : '', String(s.completed), String(s.failed), String(s.warning), result.reason ?? '',
        ]]));
        for (const uid of result.failedSopInstanceUids) console.log(`failed: ${uid}`);
      }
      process.exit(result.result === 'success' ? 0 : 1);
    });

  program
    .command('prefetch')
    .description('prefetch jobs')
    .command('ls')
    .description('prefetch jobs and their state (from the spool\'s LMDB)')
    .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = h.configOrExit(opts.config);
      const log = createLogger('warn', process.stderr);
      const spool = await Spool.open({ dir: config.storage.dir, fsync: config.storage.fsync, verify: false, ingest: false, logger: log });
      try {
        const jobs = new PrefetchService(spool, config.peers, { logger: log }).list();
        if (opts.json) return void console.log(JSON.stringify(jobs, null, 2));
        console.log(table(['job', 'state', 'patient', 'study', 'archive', 'dest', 'priors', 'attempts', 'reason'], jobs.map((j) => [
          j.id, j.state, j.patientId, j.triggeringStudy, j.action.archive, j.action.destination,
          j.priors ? j.priors.map((p) => p.state).join(',') || '-' : '', String(j.attempts), j.reason ?? '',
        ])));
      } finally {
        await spool.close();
      }
    });
}
