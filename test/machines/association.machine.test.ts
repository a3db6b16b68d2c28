import test, { type ExecutionContext } from 'ava';
import { createActor, SimulatedClock } from 'xstate';
import { associationMachine, type DulEvent, type DulOutput, type DulRole } from '../../machines/association.machine.ts';
import type { Abort, AssociateAc, AssociateRj, AssociateRq, PDataTf, Pdu } from '../../protocol/pdu.types.ts';
import { DUL_TABLE, EVENT_NUMBERS, STATES, type StateId } from './dul-table.ts';

const ARTIM_MS = 30_000;

// ---- fixtures -------------------------------------------------------------------------------

const userInformation = {
  maxPduLength: 16384, implementationClassUid: '1.2.3.4', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [],
};
const common = {
  protocolVersion: 1, calledAeTitle: 'ROUTER', callingAeTitle: 'MODALITY', applicationContext: '1.2.840.10008.3.1.1.1', userInformation,
};
const rq: AssociateRq = {
  type: 'A-ASSOCIATE-RQ', ...common,
  presentationContexts: [{ id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] }],
};
const ac: AssociateAc = {
  type: 'A-ASSOCIATE-AC', ...common, presentationContexts: [{ id: 1, result: 0, transferSyntax: '1.2.840.10008.1.2' }],
};
const rj: AssociateRj = { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 7 };
const pdata: PDataTf = { type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: new Uint8Array([1, 2, 3]) }] };
const userAbort: Abort = { type: 'A-ABORT', source: 0, reason: 0 };

/** One representative event for each of Evt1..Evt19. */
const EVT: Record<number, DulEvent> = {
  1: { type: 'A_ASSOCIATE_REQUESTED', rq }, 2: { type: 'TRANSPORT_CONNECTED' },
  3: { type: 'ASSOCIATE_AC_RECEIVED', pdu: ac }, 4: { type: 'ASSOCIATE_RJ_RECEIVED', pdu: rj },
  5: { type: 'TRANSPORT_ACCEPTED' }, 6: { type: 'ASSOCIATE_RQ_RECEIVED', pdu: rq },
  7: { type: 'A_ASSOCIATE_ACCEPT_REQUESTED', ac }, 8: { type: 'A_ASSOCIATE_REJECT_REQUESTED', rj },
  9: { type: 'P_DATA_REQUESTED', pdu: pdata }, 10: { type: 'P_DATA_TF_RECEIVED', pdu: pdata },
  11: { type: 'A_RELEASE_REQUESTED' }, 12: { type: 'RELEASE_RQ_RECEIVED' }, 13: { type: 'RELEASE_RP_RECEIVED' },
  14: { type: 'A_RELEASE_RESPONSE_REQUESTED' }, 15: { type: 'A_ABORT_REQUESTED' },
  16: { type: 'ABORT_RECEIVED', pdu: userAbort }, 17: { type: 'TRANSPORT_CLOSED' }, 18: { type: 'ARTIM_EXPIRED' },
  19: { type: 'INVALID_PDU_RECEIVED', reason: 6, detail: 'bad presentation context item length' },
};

// ---- driving the machine --------------------------------------------------------------------

type Path = { role: DulRole; via: string; events: number[] };

const REQ_STA6 = [1, 2, 3];
const ACC_STA6 = [5, 6, 7];

/** Realistic event sequences from Sta1 into each state (several where both roles can be there). */
const both = (tail: number[]): Path[] => [
  { role: 'requestor', via: 'requestor', events: [...REQ_STA6, ...tail] },
  { role: 'acceptor', via: 'acceptor', events: [...ACC_STA6, ...tail] },
];
const PATHS: Record<StateId, Path[]> = {
  Sta1: [{ role: 'acceptor', via: 'initial', events: [] }],
  Sta2: [{ role: 'acceptor', via: 'Evt5', events: [5] }],
  Sta3: [{ role: 'acceptor', via: 'Evt5,6', events: [5, 6] }],
  Sta4: [{ role: 'requestor', via: 'Evt1', events: [1] }],
  Sta5: [{ role: 'requestor', via: 'Evt1,2', events: [1, 2] }],
  Sta6: both([]),
  Sta7: both([11]),
  Sta8: both([12]),
  Sta9: [{ role: 'requestor', via: 'collision', events: [...REQ_STA6, 11, 12] }],
  Sta10: [{ role: 'acceptor', via: 'collision', events: [...ACC_STA6, 11, 12] }],
  Sta11: [{ role: 'requestor', via: 'collision', events: [...REQ_STA6, 11, 12, 14] }],
  Sta12: [{ role: 'acceptor', via: 'collision', events: [...ACC_STA6, 11, 12, 13] }],
  Sta13: [
    { role: 'acceptor', via: 'AE-8', events: [5, 6, 8] },
    { role: 'acceptor', via: 'AR-4', events: [...ACC_STA6, 12, 14] },
    { role: 'requestor', via: 'AA-1', events: [...REQ_STA6, 15] },
  ],
};

function start(artimTimeoutMs = ARTIM_MS) {
  const clock = new SimulatedClock();
  const actor = createActor(associationMachine, { input: { artimTimeoutMs }, clock });
  const out: DulOutput[] = [];
  actor.on('*', (e) => out.push(e));
  actor.start();
  const state = () => actor.getSnapshot().value as string;
  const send = (e: DulEvent | number) => actor.send(typeof e === 'number' ? EVT[e]! : e);
  /** Returns and forgets what was emitted so far. */
  const take = () => out.splice(0, out.length);
  return { actor, clock, state, send, take };
}

function reach(target: StateId, path: Path) {
  const m = start();
  for (const e of path.events) m.send(e);
  if (m.state() !== target) throw new Error(`path ${path.via} reached ${m.state()}, not ${target}`);
  m.take();
  return m;
}

// ---- what each action must emit -------------------------------------------------------------

const send = (pdu: Pdu): DulOutput => ({ type: 'SEND_PDU', pdu });
const CLOSE: DulOutput = { type: 'CLOSE_TRANSPORT' };
const PDU_NAME: Record<string, string> = {
  ASSOCIATE_AC_RECEIVED: 'A-ASSOCIATE-AC', ASSOCIATE_RJ_RECEIVED: 'A-ASSOCIATE-RJ', ASSOCIATE_RQ_RECEIVED: 'A-ASSOCIATE-RQ',
  P_DATA_TF_RECEIVED: 'P-DATA-TF', RELEASE_RQ_RECEIVED: 'A-RELEASE-RQ', RELEASE_RP_RECEIVED: 'A-RELEASE-RP',
};

function providerError(e: DulEvent): { reason: number; detail: string } {
  return e.type === 'INVALID_PDU_RECEIVED' ? { reason: e.reason, detail: e.detail } : { reason: 2, detail: `unexpected ${PDU_NAME[e.type]!} PDU` };
}

function expectedOutputs(action: string, e: DulEvent): DulOutput[] {
  switch (action) {
    case 'AE-1': return [{ type: 'OPEN_TRANSPORT' }];
    case 'AE-2': return [send(rq)];
    case 'AE-3': return [{ type: 'ASSOCIATE_CONFIRMED', ac }];
    case 'AE-4': return [{ type: 'ASSOCIATE_REJECTED', rj }, CLOSE];
    case 'AE-5': return [];
    case 'AE-6': return [{ type: 'ASSOCIATE_INDICATION', rq }];
    case 'AE-7': return [send(ac)];
    case 'AE-8': return [send(rj)];
    case 'DT-1': case 'AR-7': return [send(pdata)];
    case 'DT-2': case 'AR-6': return [{ type: 'P_DATA_INDICATION', pdu: pdata }];
    case 'AR-1': return [send({ type: 'A-RELEASE-RQ' })];
    case 'AR-2': return [{ type: 'RELEASE_INDICATION' }];
    case 'AR-3': return [{ type: 'RELEASE_CONFIRMED' }, CLOSE];
    case 'AR-4': case 'AR-9': return [send({ type: 'A-RELEASE-RP' })];
    case 'AR-5': case 'AA-5': case 'AA-6': return [];
    case 'AR-8': return [{ type: 'RELEASE_COLLISION_INDICATION' }];
    case 'AR-10': return [{ type: 'RELEASE_CONFIRMED' }];
    case 'AA-1':
      return e.type === 'A_ABORT_REQUESTED'
        ? [send({ type: 'A-ABORT', source: 0, reason: 0 })]
        : [send({ type: 'A-ABORT', source: 2, reason: providerError(e).reason })];
    case 'AA-2': return [CLOSE];
    case 'AA-3': return [{ type: 'ABORT_INDICATION', source: 'peer', abortSource: 0, reason: 0 }, CLOSE];
    case 'AA-4': return [{ type: 'ABORT_INDICATION', source: 'provider', reason: 0, detail: 'transport connection closed' }];
    case 'AA-7': return [send({ type: 'A-ABORT', source: 2, reason: providerError(e).reason })];
    case 'AA-8': {
      const { reason, detail } = providerError(e);
      return [send({ type: 'A-ABORT', source: 2, reason }), { type: 'ABORT_INDICATION', source: 'provider', abortSource: 2, reason, detail }];
    }
    default: throw new Error(`no expectation for ${action}`);
  }
}

function resolveNext(next: string, role: DulRole): string {
  if (next === 'Sta9|Sta10') return role === 'requestor' ? 'Sta9' : 'Sta10';
  if (next === 'Sta3|Sta13') return 'Sta3'; // EVT[6] carries an acceptable protocol version
  return next;
}

// ---- every cell of Table 9-10 ---------------------------------------------------------------

test('the test table transcribes 13 × 19 cells, 123 of them non-blank', (t) => {
  t.is(STATES.length * EVENT_NUMBERS.length, 247);
  const filled = STATES.reduce((n, s) => n + Object.keys(DUL_TABLE[s]).length, 0);
  t.is(filled, 123);
});

for (const state of STATES) {
  for (const evt of EVENT_NUMBERS) {
    const cell = DUL_TABLE[state][evt];
    for (const path of PATHS[state]) {
      const e = EVT[evt]!;
      const title = `${state} (${path.via}) × Evt${evt} ${e.type} → ${cell ? `${cell[0]} → ${cell[1]}` : 'blank: ignored'}`;
      test(title, (t) => {
        const m = reach(state, path);
        m.send(e);
        if (cell) {
          t.is(m.state(), resolveNext(cell[1], path.role));
          t.deepEqual(m.take(), expectedOutputs(cell[0], e));
        } else {
          t.is(m.state(), state);
          t.deepEqual(m.take(), []);
        }
        m.actor.stop();
      });
    }
  }
}

// ---- AE-6, AA-1, AA-3, AA-8 details ---------------------------------------------------------

test('AE-6: an A-ASSOCIATE-RQ without protocol version bit 0 gets RJ 1/2/2 and Sta13 with ARTIM running', (t) => {
  const m = start(1000);
  m.send(5);
  m.send({ type: 'ASSOCIATE_RQ_RECEIVED', pdu: { ...rq, protocolVersion: 2 } });
  t.is(m.state(), 'Sta13');
  t.deepEqual(m.take(), [send({ type: 'A-ASSOCIATE-RJ', result: 1, source: 2, reason: 2 })]);
  m.clock.increment(1000);
  t.is(m.state(), 'Sta1');
  t.deepEqual(m.take(), [CLOSE]);
});

test('AE-6: any version with bit 0 set is acceptable; AE titles and contexts are left to the user', (t) => {
  const m = start();
  m.send(5);
  const odd = { ...rq, protocolVersion: 3, calledAeTitle: 'WHOEVER', presentationContexts: [] };
  m.send({ type: 'ASSOCIATE_RQ_RECEIVED', pdu: odd });
  t.is(m.state(), 'Sta3');
  t.deepEqual(m.take(), [{ type: 'ASSOCIATE_INDICATION', rq: odd }]);
  t.deepEqual(m.actor.getSnapshot().context.associateRq, odd);
});

test('AA-3: an A-ABORT PDU from the peer provider gives a provider abort indication', (t) => {
  const m = reach('Sta6', PATHS.Sta6[1]!);
  m.send({ type: 'ABORT_RECEIVED', pdu: { type: 'A-ABORT', source: 2, reason: 1 } });
  t.is(m.state(), 'Sta1');
  t.deepEqual(m.take(), [{ type: 'ABORT_INDICATION', source: 'provider', abortSource: 2, reason: 1 }, CLOSE]);
});

test('AA-8 / AA-1 / AA-7 carry the decoder reason of an invalid PDU into the A-ABORT', (t) => {
  const bad: DulEvent = { type: 'INVALID_PDU_RECEIVED', reason: 1, detail: 'PDU type 0x09' };
  const m = reach('Sta6', PATHS.Sta6[0]!);
  m.send(bad);
  t.deepEqual(m.take(), [
    send({ type: 'A-ABORT', source: 2, reason: 1 }),
    { type: 'ABORT_INDICATION', source: 'provider', abortSource: 2, reason: 1, detail: 'PDU type 0x09' },
  ]);
  m.send(bad); // Sta13: AA-7
  t.deepEqual(m.take(), [send({ type: 'A-ABORT', source: 2, reason: 1 })]);
  const a = reach('Sta2', PATHS.Sta2[0]!);
  a.send(bad); // Sta2: AA-1, no indication (no association was ever indicated)
  t.deepEqual(a.take(), [send({ type: 'A-ABORT', source: 2, reason: 1 })]);
});

test('role is recorded on Evt1 (requestor) and Evt5 (acceptor), with the RQ and AC', (t) => {
  const r = reach('Sta6', PATHS.Sta6[0]!);
  t.like(r.actor.getSnapshot().context, { role: 'requestor', associateRq: rq, associateAc: ac });
  const a = reach('Sta6', PATHS.Sta6[1]!);
  t.like(a.actor.getSnapshot().context, { role: 'acceptor', associateRq: rq, associateAc: ac });
  t.is(a.actor.getSnapshot().context.artimTimeoutMs, ARTIM_MS);
});

// ---- ARTIM ----------------------------------------------------------------------------------

test('ARTIM expiry in Sta2, and in Sta13 after AE-8, AR-4, AA-1 and AA-8, closes the transport → Sta1', (t) => {
  const paths: [StateId, number[]][] = [
    ['Sta2', [5]], ['Sta13', [5, 6, 8]], ['Sta13', [...ACC_STA6, 12, 14]], ['Sta13', [...REQ_STA6, 15]], ['Sta13', [...REQ_STA6, 19]],
  ];
  for (const [state, events] of paths) {
    const m = start(1000);
    for (const e of events) m.send(e);
    m.take();
    m.clock.increment(999);
    t.is(m.state(), state);
    m.clock.increment(1);
    t.is(m.state(), 'Sta1');
    t.deepEqual(m.take(), [CLOSE]);
  }
});

test('AA-1 from Sta2 restarts ARTIM; AA-6 and AA-7 in Sta13 do not restart it', (t) => {
  const m = start(1000);
  m.send(5);
  m.clock.increment(600);
  m.send(10); // Sta2 × P-DATA-TF → AA-1, ARTIM restarted
  t.is(m.state(), 'Sta13');
  m.clock.increment(600);
  t.is(m.state(), 'Sta13');
  m.send(3); // AA-6
  m.send(6); // AA-7
  m.clock.increment(399);
  t.is(m.state(), 'Sta13');
  m.clock.increment(1);
  t.is(m.state(), 'Sta1');
});

test('ARTIM stops on AE-6 (Sta3) and is not running in Sta6', (t) => {
  const m = start(1000);
  m.send(5);
  m.clock.increment(500);
  m.send(6);
  m.clock.increment(5000);
  t.is(m.state(), 'Sta3');
  m.send(7);
  m.clock.increment(60_000);
  t.is(m.state(), 'Sta6');
  const r = reach('Sta6', PATHS.Sta6[0]!); // requestor: ARTIM never started
  r.clock.increment(60 * ARTIM_MS);
  t.is(r.state(), 'Sta6');
  t.deepEqual(r.take(), []);
});

test('Sta13 × transport closed (AR-5) stops ARTIM: nothing fires later', (t) => {
  const m = start(1000);
  for (const e of [5, 6, 8, 17]) m.send(e);
  m.take();
  m.clock.increment(5000);
  t.is(m.state(), 'Sta1');
  t.deepEqual(m.take(), []);
});

// ---- happy paths ----------------------------------------------------------------------------

type Step = [evt: number, state: string, outputs: DulOutput[]];
function runSteps(t: ExecutionContext, m: ReturnType<typeof start>, steps: Step[]) {
  for (const [evt, state, outputs] of steps) {
    m.send(evt);
    t.is(m.state(), state, `after Evt${evt}`);
    t.deepEqual(m.take(), outputs, `after Evt${evt}`);
  }
}

test('acceptor happy path: Evt5, 6, 7, 10, 9, 12, 14, 17', (t) => {
  runSteps(t, start(), [
    [5, 'Sta2', []],
    [6, 'Sta3', [{ type: 'ASSOCIATE_INDICATION', rq }]],
    [7, 'Sta6', [send(ac)]],
    [10, 'Sta6', [{ type: 'P_DATA_INDICATION', pdu: pdata }]],
    [9, 'Sta6', [send(pdata)]],
    [12, 'Sta8', [{ type: 'RELEASE_INDICATION' }]],
    [14, 'Sta13', [send({ type: 'A-RELEASE-RP' })]],
    [17, 'Sta1', []],
  ]);
});

test('requestor happy path: Evt1, 2, 3, 9, 10, 11, 13', (t) => {
  runSteps(t, start(), [
    [1, 'Sta4', [{ type: 'OPEN_TRANSPORT' }]],
    [2, 'Sta5', [send(rq)]],
    [3, 'Sta6', [{ type: 'ASSOCIATE_CONFIRMED', ac }]],
    [9, 'Sta6', [send(pdata)]],
    [10, 'Sta6', [{ type: 'P_DATA_INDICATION', pdu: pdata }]],
    [11, 'Sta7', [send({ type: 'A-RELEASE-RQ' })]],
    [10, 'Sta7', [{ type: 'P_DATA_INDICATION', pdu: pdata }]],
    [13, 'Sta1', [{ type: 'RELEASE_CONFIRMED' }, CLOSE]],
  ]);
});

// ---- two machines on a simulated wire -------------------------------------------------------

const RECEIVED: Record<Pdu['type'], (pdu: any) => DulEvent> = {
  'A-ASSOCIATE-RQ': (pdu) => ({ type: 'ASSOCIATE_RQ_RECEIVED', pdu }),
  'A-ASSOCIATE-AC': (pdu) => ({ type: 'ASSOCIATE_AC_RECEIVED', pdu }),
  'A-ASSOCIATE-RJ': (pdu) => ({ type: 'ASSOCIATE_RJ_RECEIVED', pdu }),
  'P-DATA-TF': (pdu) => ({ type: 'P_DATA_TF_RECEIVED', pdu }),
  'A-RELEASE-RQ': () => ({ type: 'RELEASE_RQ_RECEIVED' }),
  'A-RELEASE-RP': () => ({ type: 'RELEASE_RP_RECEIVED' }),
  'A-ABORT': (pdu) => ({ type: 'ABORT_RECEIVED', pdu }),
};

/** A requestor and an acceptor joined by an in-order queue standing in for TCP; each side's
 *  "user" answers indications the way an application would. Nothing is delivered until flush(). */
function wire() {
  const req = start();
  const acc = start();
  const queue: (() => void)[] = [];
  const log: string[] = [];
  const link = (self: typeof req, peer: typeof req, name: string) =>
    self.actor.on('*', (o) => {
      log.push(`${name} ${o.type}${o.type === 'SEND_PDU' ? ` ${o.pdu.type}` : ''}`);
      if (o.type === 'OPEN_TRANSPORT') queue.push(() => peer.send(5), () => self.send(2));
      if (o.type === 'SEND_PDU') queue.push(() => peer.send(RECEIVED[o.pdu.type](o.pdu)));
      if (o.type === 'CLOSE_TRANSPORT') queue.push(() => peer.send(17));
      if (o.type === 'ASSOCIATE_INDICATION') queue.push(() => self.send(7));
      if (o.type === 'RELEASE_INDICATION') queue.push(() => self.send(14));
      // PS3.8 7.2.2 release collision: the requestor answers first (Sta9), the acceptor after its
      // confirmation (Sta12).
      if (o.type === 'RELEASE_COLLISION_INDICATION' && self.actor.getSnapshot().context.role === 'requestor')
        queue.push(() => self.send(14));
      if (o.type === 'RELEASE_CONFIRMED' && self === acc) queue.push(() => self.send(14));
    });
  link(req, acc, 'req');
  link(acc, req, 'acc');
  const flush = () => {
    while (queue.length) queue.shift()!();
  };
  return { req, acc, flush, log };
}

test('two machines: associate, exchange P-DATA, release normally', (t) => {
  const w = wire();
  w.req.send(1);
  w.flush();
  t.deepEqual([w.req.state(), w.acc.state()], ['Sta6', 'Sta6']);
  w.req.send(9);
  w.acc.send(9);
  w.req.send(11);
  w.flush();
  t.deepEqual([w.req.state(), w.acc.state()], ['Sta1', 'Sta1']);
  t.deepEqual(w.log.slice(-9), [
    'req SEND_PDU P-DATA-TF', 'acc SEND_PDU P-DATA-TF', 'req SEND_PDU A-RELEASE-RQ', 'acc P_DATA_INDICATION',
    'req P_DATA_INDICATION', 'acc RELEASE_INDICATION', 'acc SEND_PDU A-RELEASE-RP', 'req RELEASE_CONFIRMED',
    'req CLOSE_TRANSPORT', // then the acceptor gets Evt17 in Sta13: AR-5 → Sta1
  ]);
});

test('release collision, both roles: requestor Sta7→Sta9→Sta11→Sta1, acceptor Sta7→Sta10→Sta12→Sta13→Sta1', (t) => {
  const w = wire();
  w.req.send(1);
  w.flush();
  w.req.send(11);
  w.acc.send(11);
  t.is(w.req.state(), 'Sta7');
  t.is(w.acc.state(), 'Sta7');
  w.flush(); // the two A-RELEASE-RQs cross on the wire
  t.is(w.req.state(), 'Sta1');
  t.is(w.acc.state(), 'Sta1');
  t.deepEqual(w.log.slice(-9), [
    'req SEND_PDU A-RELEASE-RQ',
    'acc SEND_PDU A-RELEASE-RQ',
    'acc RELEASE_COLLISION_INDICATION', // acceptor: AR-8 → Sta10
    'req RELEASE_COLLISION_INDICATION', // requestor: AR-8 → Sta9
    'req SEND_PDU A-RELEASE-RP', // AR-9 → Sta11
    'acc RELEASE_CONFIRMED', // AR-10 → Sta12
    'acc SEND_PDU A-RELEASE-RP', // AR-4 → Sta13
    'req RELEASE_CONFIRMED', // AR-3 → Sta1
    'req CLOSE_TRANSPORT', // acceptor: Evt17 in Sta13, AR-5 → Sta1
  ]);
});

test('release collision states step by step, both roles', (t) => {
  runSteps(t, reach('Sta7', PATHS.Sta7[0]!), [
    [12, 'Sta9', [{ type: 'RELEASE_COLLISION_INDICATION' }]],
    [14, 'Sta11', [send({ type: 'A-RELEASE-RP' })]],
    [13, 'Sta1', [{ type: 'RELEASE_CONFIRMED' }, CLOSE]],
  ]);
  runSteps(t, reach('Sta7', PATHS.Sta7[1]!), [
    [12, 'Sta10', [{ type: 'RELEASE_COLLISION_INDICATION' }]],
    [13, 'Sta12', [{ type: 'RELEASE_CONFIRMED' }]],
    [14, 'Sta13', [send({ type: 'A-RELEASE-RP' })]],
    [17, 'Sta1', []],
  ]);
});
