// A raw DICOM peer for tests: hand-made A-ASSOCIATE-RQs and a socket that decodes whatever the
// router sends back, so malformed and out-of-order input can be sent on purpose.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { decodePdu } from '../../protocol/pdu.ts';
import { PduFramer } from '../../protocol/pdu-framer.ts';
import type { AssociateRq, Pdu } from '../../protocol/pdu.types.ts';
import { IMPLEMENTATION_CLASS_UID, VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';

/** An A-ASSOCIATE-RQ for Verification to DICOM_ROUTER, with whatever the test overrides. */
export function echoRq(overrides: Partial<AssociateRq> = {}): AssociateRq {
  return {
    type: 'A-ASSOCIATE-RQ',
    protocolVersion: 1,
    calledAeTitle: 'DICOM_ROUTER',
    callingAeTitle: 'RAW',
    applicationContext: '1.2.840.10008.3.1.1.1',
    presentationContexts: [{ id: 1, abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }],
    userInformation: { maxPduLength: 16384, implementationClassUid: IMPLEMENTATION_CLASS_UID, roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
    ...overrides,
  };
}

/** A raw peer: the PDUs it receives, decoded, and when the router closed it. */
export function rawPeer(port: number, localAddress?: string) {
  const framer = new PduFramer({ maxPduLength: 1 << 20 });
  const received: Pdu[] = [];
  let onPdu: (() => void) | undefined;
  const socket: Socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  socket.on('data', (chunk) => {
    for (const raw of framer.push(chunk)) received.push(decodePdu(raw));
    onPdu?.();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  /** The n-th PDU received (1-based), waiting up to 5 s for it. */
  const next = (n: number) =>
    new Promise<Pdu>((resolve, reject) => {
      const check = () => received.length >= n && resolve(received[n - 1]);
      onPdu = check;
      check();
      setTimeout(() => reject(new Error(`no PDU #${n}`)), 5000).unref();
    });
  return { socket, received, next, closed, connected: new Promise((r) => socket.once('connect', r)) };
}
