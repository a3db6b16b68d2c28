// C-FIND through the router: the identifier goes to every source at once (the spool's index, and each
// upstream archive on its own association within its maxAssociations); every match is relayed as it
// arrives, once per unique key of the level (the first source to answer wins), with Retrieve AE Title
// set to the router's AE title. Upstream matches are relayed as their bytes (the requester's own
// transfer syntax is the only one proposed upstream), so their character set passes through
// unchanged. One source failing is logged and the others' results stand; all failing is A700.
import type { PeerConfig } from '../../config/config.ts';
import { transactionId } from '../../machines/association.machine.ts';
import type { FindMatch, QrFinal, Running } from '../../machines/dimse/qr-scp.events.ts';
import { encodeIdentifier, keywordTag } from '../../protocol/dataset-encode.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { rewriteHeader } from '../../protocol/dataset-rewrite.ts';
import { CommandField, DATASET_PRESENT, Priority } from '../../protocol/dimse.ts';
import { MatchMerger, UNIQUE_KEYS } from '../../protocol/qr-matching.ts';
import { formatStatus, Status, statusCategory, errorCommentOf } from '../../protocol/status.ts';
import { queryIndex } from '../ingest/index-query.ts';
import type { IndexEntity } from '../ingest/index-query.ts';
import type { ScuAssociation } from '../net/scu.ts';
import { isFinal, parseIdentifier, sourcesOf } from './qr-scp.ts';
import type { ParsedIdentifier, QrContext, QrRequest } from './qr-scp.ts';
import { QR_SOP_CLASSES, withQrAssociation } from './qr-scu.ts';
import { jobInput, startQrJob } from './qr-job.ts';
import type { AssociationOwner } from './qr-job.ts';
import { qrUpstreamMachine } from '../../machines/qr-upstream.machine.ts';

/** Retrieve AE Title (0008,0054). */
const RETRIEVE_AE_TITLE = '00080054';

/** Start a C-FIND: matches go to `emit` as they come; `done` is the final status. */
export function runFind(ctx: QrContext, req: QrRequest, emit: (m: FindMatch) => void): Running<QrFinal> {
  const cancels = new Set<() => void>();
  let cancelled = false;
  const done = (async (): Promise<QrFinal> => {
    const parsed = parseIdentifier(req);
    if (isFinal(parsed)) {
      req.log.warn({ status: formatStatus(parsed.status, 'find'), why: parsed.errorComment }, 'C-FIND refused');
      return parsed;
    }
    const { local, upstream } = sourcesOf(ctx);
    const merger = new MatchMerger(parsed.level);
    const counts: Record<string, number> = {};
    const relay = (source: string, m: FindMatch, dataset: Record<string, unknown>) => {
      if (cancelled || !merger.admit(dataset)) return;
      counts[source] = (counts[source] ?? 0) + 1;
      emit(m);
    };
    const failures: string[] = [];
    const work: Promise<void>[] = [];
    // Going upstream, the search is a job in the actor tree with its upstream associations as children.
    const job = upstream.length > 0 ? startQrJob(ctx, 'query', qrUpstreamMachine, jobInput('C-FIND', parsed, req, upstream)) : undefined;
    const relayCounted = (source: string, m: FindMatch, dataset: Record<string, unknown>) => {
      relay(source, m, dataset);
      job?.send({ type: 'MATCHES', bySource: counts });
    };
    if (local) {
      work.push(Promise.resolve().then(() => {
        const { entities, unsupported } = queryIndex(ctx.spool, parsed.level, parsed.keys);
        if (unsupported.length > 0) req.log.info({ unsupported }, 'local index: keys it cannot match were not matched (FF01)');
        for (const e of entities) relay('local', { dataset: localMatch(parsed, e, req), warning: unsupported.length > 0 }, e);
      }).catch((err: unknown) => {
        failures.push(`local: ${String(err)}`);
        req.log.error({ err: String(err) }, 'C-FIND: the local index failed');
      }));
    }
    const identifier = withUniqueKey(parsed, req);
    // The keys added for merging go back out of each match: the requester gets what it asked for.
    const rewrites = [{ tag: RETRIEVE_AE_TITLE, action: 'set' as const, vr: 'AE', value: req.calledAeTitle }, ...addedKeys(parsed).map((k) => ({ tag: tagOf(k), action: 'remove' as const }))];
    for (const peer of upstream) {
      work.push(findUpstream(ctx, req, peer, identifier, (raw) => {
        try {
          const dataset = parseHeader(raw, req.transferSyntax).dataset;
          relayCounted(peer.name, { dataset: rewriteHeader(raw, req.transferSyntax, rewrites) }, dataset);
        } catch (err) {
          req.log.warn({ source: peer.name, err: String(err) }, 'C-FIND: an upstream match could not be read; skipped');
        }
      }, cancels, () => cancelled, job?.owner).catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        failures.push(`${peer.name}: ${why}`);
        req.log.warn({ source: peer.name, why }, 'C-FIND: an upstream archive failed; the other sources still answer');
      }));
    }
    await Promise.all(work);
    const sources = (local ? 1 : 0) + upstream.length;
    req.log.info({ level: parsed.level, matches: counts, duplicates: merger.duplicates, failed: failures.length, cancelled }, 'C-FIND done');
    const final: QrFinal = cancelled ? { status: Status.CANCEL }
      : sources > 0 && failures.length === sources ? { status: Status.OUT_OF_RESOURCES, errorComment: errorCommentOf(`every source failed: ${failures.join('; ')}`) }
      : { status: Status.SUCCESS };
    job?.end(final.status);
    return final;
  })();
  return {
    done,
    cancel: () => {
      cancelled = true;
      for (const c of cancels) c();
    },
  };
}

/** The level's unique keys the requester did not ask for (at PATIENT level: Patient ID and its issuer). */
const addedKeys = (parsed: ParsedIdentifier) => UNIQUE_KEYS[parsed.level].filter((k) => parsed.keys[k] === undefined);
const tagOf = (keyword: string) => keywordTag(keyword).tag.toString(16).padStart(8, '0').toUpperCase();

/**
 * The identifier sent upstream: the requester's bytes, with the level's unique keys added as return
 * keys when it did not ask for them (merging needs them: the same Patient ID from two issuers is two
 * patients).
 */
function withUniqueKey(parsed: ParsedIdentifier, req: QrRequest): Uint8Array {
  const missing = addedKeys(parsed);
  if (missing.length === 0) return req.identifier;
  return rewriteHeader(req.identifier, req.transferSyntax, missing.map((k) => ({ tag: tagOf(k), action: 'set' as const, vr: keywordTag(k).vr, value: '' })));
}

/** A local match: the requested keys (empty where the index keeps no value), in the requester's syntax. */
function localMatch(parsed: ParsedIdentifier, entity: IndexEntity, req: QrRequest): Uint8Array {
  const out: Record<string, string> = {};
  for (const k of parsed.returnKeys) out[k] = entity[k] ?? '';
  out[UNIQUE_KEYS[parsed.level][0]] = entity[UNIQUE_KEYS[parsed.level][0]] ?? '';
  out.QueryRetrieveLevel = parsed.level;
  out.RetrieveAETitle = req.calledAeTitle;
  // Values are decoded text: ASCII goes out in the query's own set; anything else in UTF-8.
  const ascii = Object.values(out).every((v) => /^[\x20-\x7e]*$/.test(v));
  if (!ascii) out.SpecificCharacterSet = 'ISO_IR 192';
  else if (parsed.specificCharacterSet) out.SpecificCharacterSet = parsed.specificCharacterSet;
  return encodeIdentifier(out, req.transferSyntax);
}

/** One upstream archive's C-FIND, each pending match to `onMatch` as it arrives. Throws its failure. */
async function findUpstream(ctx: QrContext, req: QrRequest, peer: PeerConfig, identifier: Uint8Array, onMatch: (raw: Uint8Array) => void, cancels: Set<() => void>, cancelled: () => boolean, owner?: AssociationOwner): Promise<void> {
  const log = req.log.child({ source: peer.name });
  await ctx.slots.with(peer.name, () => withQrAssociation(peer, req.model, log, async (scu) => {
    if (cancelled()) return;
    const outcome = await streamFind(scu, req, identifier, onMatch, cancels);
    if (outcome.timedOut) scu.abort();
    if (outcome.status === undefined) throw new Error(outcome.failure ?? 'no final response');
    if (statusCategory(outcome.status) === 'failure') throw new Error(`${formatStatus(outcome.status, 'find')}${outcome.errorComment ? `: ${outcome.errorComment}` : ''}`);
  }, 'find', [req.transferSyntax], owner));
}


type StreamOutcome = { status?: number; errorComment?: string; failure?: string; timedOut?: boolean };

/** Runs the C-FIND SCU transaction machine and reads its matches from its snapshots as they come. */
function streamFind(scu: ScuAssociation, req: QrRequest, identifier: Uint8Array, onMatch: (raw: Uint8Array) => void, cancels: Set<() => void>): Promise<StreamOutcome> {
  const sopClass = QR_SOP_CLASSES[req.model].find;
  const context = scu.contextFor(sopClass, req.transferSyntax);
  if (!context) throw new Error(`accepted no C-FIND context in ${req.transferSyntax}`);
  const messageId = scu.newMessageId();
  const outcome = scu.runTransaction('cFindScu', context.id, {
    CommandField: CommandField.C_FIND_RQ, MessageID: messageId, AffectedSOPClassUID: sopClass, Priority: Priority.MEDIUM, CommandDataSetType: DATASET_PRESENT,
  }, { kind: 'bytes', data: identifier });
  const child = scu.association.machine.getSnapshot().children[transactionId(messageId)];
  let seen = 0;
  const take = (matches: readonly Uint8Array[]) => {
    while (seen < matches.length) onMatch(matches[seen++]);
  };
  // The C-FIND SCU machine's context holds its matches so far (c-find-scu.machine.ts).
  const sub = child?.subscribe((snap) => take((snap.context as { matches?: Uint8Array[] } | undefined)?.matches ?? []));
  const cancel = () => child?.send({ type: 'CANCEL_REQUESTED' });
  cancels.add(cancel);
  return outcome.then((o) => {
    sub?.unsubscribe();
    cancels.delete(cancel);
    take(o.datasets ?? []);
    return o;
  });
}
