// Query/Retrieve SCP through the router (issue 16): what a listener's C-FIND and C-MOVE transaction
// machines run. The request's identifier is read here (level, keys), the sources are asked (the
// spool's index, upstream archives through the C-FIND/C-MOVE SCU of qr-scu.ts, one association per
// archive within its maxAssociations) and their answers reported to the machine as they come.
// C-FIND: actors/jobs/qr-scp-find.ts; C-MOVE: actors/jobs/qr-scp-move.ts.
import type { Logger } from 'pino';
import type { AnyActorLogic, AnyActorRef } from 'xstate';
import type { PeerConfig, QueryRetrieveConfig } from '../../config/config.ts';
import { LOCAL_SOURCE } from '../../config/config.ts';
import type { QrFinal } from '../../machines/dimse/qr-scp.events.ts';
import type { QueryLevel } from '../../protocol/dataset-encode.ts';
import { keywordTag } from '../../protocol/dataset-encode.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { queryLevelOf, textOf } from '../../protocol/qr-matching.ts';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { PATIENT_ROOT_FIND, PATIENT_ROOT_GET, PATIENT_ROOT_MOVE, STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE } from '../../protocol/uids.ts';
import type { Spool } from '../ingest/spool.ts';
import type { QrModel } from './qr-scu.ts';
import type { PeerGates } from '../forward/peer-gate.ts';

/** The Q/R SOP classes a listener with `queryRetrieve` accepts. */
export const QR_SCP_SOP_CLASSES = [PATIENT_ROOT_FIND, STUDY_ROOT_FIND, PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE, PATIENT_ROOT_GET, STUDY_ROOT_GET];

/** The information model of a Q/R abstract syntax, or undefined for another. */
export function qrModelOf(sopClassUid: string): { model: QrModel; service: 'find' | 'move' | 'get' } | undefined {
  switch (sopClassUid) {
    case PATIENT_ROOT_FIND: return { model: 'patient-root', service: 'find' };
    case STUDY_ROOT_FIND: return { model: 'study-root', service: 'find' };
    case PATIENT_ROOT_MOVE: return { model: 'patient-root', service: 'move' };
    case STUDY_ROOT_MOVE: return { model: 'study-root', service: 'move' };
    case PATIENT_ROOT_GET: return { model: 'patient-root', service: 'get' };
    case STUDY_ROOT_GET: return { model: 'study-root', service: 'get' };
    default: return undefined;
  }
}

/** One request as the acceptor hands it over. */
export type QrRequest = {
  model: QrModel;
  /** The presentation context's transfer syntax: the identifier's, and every answer's. */
  transferSyntax: string;
  identifier: Uint8Array;
  /** The AE title the requester called: the router's, as Retrieve AE Title. */
  calledAeTitle: string;
  callingAeTitle: string;
  log: Logger;
};

/** What both services share: the sources, the peers and their association slots. */
export type QrContext = {
  config: QueryRetrieveConfig;
  spool: Spool;
  peers: ReadonlyMap<string, PeerConfig>;
  slots: AssociationSlots;
  /** Instances as they are stored, on any listener (retrieve-through watches its own arrive). */
  stored: StoredInstances;
  /** Adopts a job into the actor tree (the root's JOB_STARTED / JOB_ENDED), so the console shows it. */
  jobs?: QrJobHost;
  logger: Logger;
};

export type QrJobHost = { start(id: string, logic: AnyActorLogic, input: unknown): AnyActorRef | undefined; end(id: string): void };

/** An instance the router just made durable (C-STORE answered Success). */
export type StoredInstance = { sopInstanceUid: string; studyInstanceUid: string; seriesInstanceUid: string; patientId: string; issuerOfPatientId?: string };

/** Tells whoever listens that an instance was stored (the acceptor calls notify after a Success commit). */
export class StoredInstances {
  readonly #listeners = new Set<(i: StoredInstance) => void>();
  subscribe(fn: (i: StoredInstance) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
  notify(i: StoredInstance): void {
    for (const fn of this.#listeners) fn(i);
  }
}

export type ParsedIdentifier = {
  level: QueryLevel;
  /** keyword → decoded text ('' universal), for every top-level attribute with a dictionary keyword. */
  keys: Record<string, string>;
  /** The keywords that can be returned as flat attributes (no sequences, no private tags). */
  returnKeys: string[];
  specificCharacterSet?: string;
};

/** The identifier's level and keys, or the status that refuses it (PS3.4 C.4.1.1.4: A900, C000). */
export function parseIdentifier(req: QrRequest): ParsedIdentifier | QrFinal {
  let dataset: Record<string, unknown>;
  try {
    dataset = parseHeader(req.identifier, req.transferSyntax).dataset;
  } catch (err) {
    return { status: Status.UNABLE_TO_PROCESS, errorComment: `unreadable identifier: ${(err as Error).message}` };
  }
  const level = queryLevelOf(dataset.QueryRetrieveLevel);
  if (!level) return { status: Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, errorComment: errorCommentOf(`QueryRetrieveLevel ${JSON.stringify(textOf(dataset.QueryRetrieveLevel))}: not PATIENT/STUDY/SERIES/IMAGE`) };
  if (level === 'PATIENT' && req.model === 'study-root') return { status: Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, errorComment: 'Study Root has no PATIENT level' };
  const keys: Record<string, string> = {};
  const returnKeys: string[] = [];
  for (const [keyword, value] of Object.entries(dataset)) {
    if (keyword === '_vrMap' || /^[0-9A-F]{8}$/i.test(keyword)) continue;
    let flat = true;
    try {
      keywordTag(keyword);
    } catch {
      flat = false; // a sequence: passed upstream as it is, not matched or returned locally
    }
    if (!flat) continue;
    keys[keyword] = textOf(value);
    if (keyword !== 'SpecificCharacterSet') returnKeys.push(keyword);
  }
  const charset = keys.SpecificCharacterSet;
  delete keys.SpecificCharacterSet;
  return { level, keys, returnKeys, ...(charset ? { specificCharacterSet: charset } : {}) };
}

export const isFinal = (v: ParsedIdentifier | QrFinal): v is QrFinal => 'status' in v;

/** The configured sources, split: the local index and the upstream archives (peer configs). */
export function sourcesOf(ctx: QrContext): { local: boolean; upstream: PeerConfig[] } {
  const upstream = ctx.config.sources.filter((s) => s !== LOCAL_SOURCE).map((s) => ctx.peers.get(s)).filter((p): p is PeerConfig => p !== undefined);
  return { local: ctx.config.sources.includes(LOCAL_SOURCE), upstream };
}

/**
 * At most `maxAssociations` Q/R associations at once per upstream peer, FIFO; and to a peer that takes
 * one association at a time (`exclusive`: Canon Virtual Place, ../shared/conformance 000), one at a time
 * whoever opens it (the forwarder, prefetch, Q/R: the shared PeerGates turn).
 */
export class AssociationSlots {
  readonly #free = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();
  readonly #limit: (peer: string) => number;
  readonly #gates: PeerGates | undefined;
  constructor(limit: (peer: string) => number, gates?: PeerGates) {
    this.#limit = limit;
    this.#gates = gates;
  }
  /** The exclusive peer's turn (resolves at once for another peer); the function returned ends it. */
  turn(peer: string): Promise<() => void> {
    return this.#gates ? this.#gates.acquire(peer) : Promise.resolve(() => {});
  }
  async with<T>(peer: string, fn: () => Promise<T>): Promise<T> {
    const free = this.#free.get(peer) ?? this.#limit(peer);
    if (free > 0) this.#free.set(peer, free - 1);
    else await new Promise<void>((r) => this.#waiting.set(peer, [...(this.#waiting.get(peer) ?? []), r]));
    const endTurn = await this.turn(peer);
    try {
      return await fn();
    } finally {
      endTurn();
      const next = this.#waiting.get(peer)?.shift();
      if (next) next();
      else this.#free.set(peer, (this.#free.get(peer) ?? 0) + 1);
    }
  }
}
