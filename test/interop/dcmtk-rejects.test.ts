// Every A-ASSOCIATE-RJ reason the listener gives, provoked and read back: from DCMTK's own
// output where DCMTK can provoke it, from the raw PDU where it cannot (application context,
// protocol version).
import test from 'ava';
import { pino } from 'pino';
import { ScuAssociation, AssociationRejectedError } from '../../actors/net/scu.ts';
import { encodePdu } from '../../protocol/pdu.ts';
import type { AssociateRq, Pdu } from '../../protocol/pdu.types.ts';
import { VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';
import { echoRq, rawPeer } from '../helpers/raw-peer.ts';
import { run, startRouter, waitForOutput } from '../helpers/processes.ts';

const silent = pino({ level: 'silent' });

/** Send one A-ASSOCIATE-RQ on a raw socket; the first PDU that comes back. */
async function firstReply(port: number, request: AssociateRq): Promise<Pdu> {
  const peer = rawPeer(port);
  await peer.connected;
  peer.socket.write(encodePdu(request));
  const reply = await peer.next(1);
  peer.socket.destroy();
  return reply;
}

test('1/1/7: called AE title not recognized (echoscu)', async (t) => {
  const router = await startRouter();
  t.teardown(router.stop);
  const r = await run('echoscu', ['-aet', 'ECHOSCU', '-aec', 'NOT_ME', '127.0.0.1', String(router.port)]);
  t.not(r.code, 0);
  t.regex(r.stdout + r.stderr, /Rejected Permanent/i);
  t.regex(r.stdout + r.stderr, /Called AE Title Not Recognized/i);
});

test('1/1/3: calling AE title not recognized (echoscu)', async (t) => {
  const router = await startRouter({ listener: { acceptCallingAeTitles: ['FRIEND'] } });
  t.teardown(router.stop);
  const stranger = await run('echoscu', ['-aet', 'STRANGER', '-aec', router.aeTitle, '127.0.0.1', String(router.port)]);
  t.not(stranger.code, 0);
  t.regex(stranger.stdout + stranger.stderr, /Calling AE Title Not Recognized/i);
  const friend = await run('echoscu', ['-aet', 'FRIEND', '-aec', router.aeTitle, '127.0.0.1', String(router.port)]);
  t.is(friend.code, 0, friend.stdout + friend.stderr);
});

test('2/3/2: local limit exceeded, transient, when maxAssociations are in use (echoscu)', async (t) => {
  const router = await startRouter({ listener: { maxAssociations: 1 } });
  t.teardown(router.stop);
  const held = await ScuAssociation.open({
    host: '127.0.0.1', port: router.port, callingAeTitle: 'HOLDER', calledAeTitle: router.aeTitle,
    contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], logger: silent,
  });
  const r = await run('echoscu', ['-aet', 'ECHOSCU', '-aec', router.aeTitle, '127.0.0.1', String(router.port)]);
  t.not(r.code, 0);
  t.regex(r.stdout + r.stderr, /Rejected Transient/i);
  t.regex(r.stdout + r.stderr, /Local Limit Exceeded/i);
  // The slot frees once the holder releases.
  await held.release();
  const again = await run('echoscu', ['-aet', 'ECHOSCU', '-aec', router.aeTitle, '127.0.0.1', String(router.port)]);
  t.is(again.code, 0, again.stdout + again.stderr);
});

test('1/1/2: application context name not supported (raw RQ)', async (t) => {
  const router = await startRouter();
  t.teardown(router.stop);
  t.deepEqual(await firstReply(router.port, echoRq({ applicationContext: '1.2.3.4' })), { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 2 });
});

test('1/2/2: protocol version not supported (raw RQ)', async (t) => {
  const router = await startRouter();
  t.teardown(router.stop);
  t.deepEqual(await firstReply(router.port, echoRq({ protocolVersion: 2 })), { type: 'A-ASSOCIATE-RJ', result: 1, source: 2, reason: 2 });
});

test('our SCU reports a rejection with its standard meaning', async (t) => {
  const router = await startRouter();
  t.teardown(router.stop);
  const err = await t.throwsAsync(
    ScuAssociation.open({
      host: '127.0.0.1', port: router.port, callingAeTitle: 'ME', calledAeTitle: 'WRONG',
      contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], logger: silent,
    }),
    { instanceOf: AssociationRejectedError },
  );
  t.regex(err!.message, /rejected-permanent, source 1, reason 7 \(called-AE-title-not-recognized\)/);
});

test('a source address outside allowedSources gets no association; allowed ones do', async (t) => {
  const blocked = await startRouter({ listener: { allowedSources: ['10.99.0.0/16'] } });
  t.teardown(blocked.stop);
  const r = await run('echoscu', ['-aet', 'ECHOSCU', '-aec', blocked.aeTitle, '127.0.0.1', String(blocked.port)]);
  t.not(r.code, 0);
  // The router's line reaches us through a pipe, maybe after echoscu has exited: wait for it.
  await waitForOutput(blocked, 'source address not allowed');
  t.regex(blocked.output(), /source address not allowed/);
  const allowed = await startRouter({ listener: { allowedSources: ['127.0.0.0/8'] } });
  t.teardown(allowed.stop);
  const ok = await run('echoscu', ['-aet', 'ECHOSCU', '-aec', allowed.aeTitle, '127.0.0.1', String(allowed.port)]);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
});
