// The inspector server (issue 6): the live page, the JSON API, Prometheus metrics and health, over
// HTTP and one WebSocket that pushes the actor tree as it changes. The root actor's inspection
// callback (createInspection().inspect) feeds one RxJS Subject of inspection events; its subscribers
// are the metrics, the recent-events store, the WebSocket push (auditTime: at most one tree per
// PUSH_MS) and, when configured, the Stately Inspector. Inspection carries control events only (a
// P-DATA-TF in a data-transfer state is no event; bytes are the associations' `traffic` counters),
// and nothing is done with an event nobody subscribed to. Bound to loopback by default; with a token every request but /healthz and
// /readyz must carry it (config load refuses a non-loopback bind without one).
import { accessSync, constants, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { createWebSocketInspector } from '@statelyai/inspect';
import { auditTime, filter, Subject } from 'rxjs';
import type { Observable, Subscription } from 'rxjs';
import type { WebSocket } from 'ws';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { RouterConfig } from '../../config/config.ts';
import { listenerId, peerId } from '../../machines/router.machine.ts';
import { actorTree, findActor, RecentEvents, sanitize, stateDiagram } from './inspector-model.ts';
import { RouterMetrics } from './metrics.ts';
import { Alerts } from './alerts.ts';
import { ConsoleModel } from './console-model.ts';
import { alertConditions, cachedDeadLetters, consoleView, peerSlots } from './console-view.ts';
import { associations, peers, prefetchJobs } from './inspector-views.ts';
import { trueNextAttempt } from './next-attempt.ts';
import type { ConsoleDeps } from './console-view.ts';
import type { RunningRouter } from '../router.ts';
import { slotsOf } from '../router.ts';

const PAGE = new URL('./inspector-page.html', import.meta.url);
/** Tree pushes are coalesced: a busy association changes state many times a millisecond. */
const PUSH_MS = 100;
/** How often the alert conditions are evaluated (each alert is logged when it starts and when it ends). */
const ALERT_MS = 2000;
const CONSOLE_CACHE_MS = 1000;
/** The console's charting library, served by the router from node_modules (nothing fetched at run time). */
const VENDOR: Record<string, { file: string; type: string }> = {
  '/vendor/uPlot.iife.min.js': { file: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { file: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

export type InspectorServer = { port: number; url: string; close(): Promise<void> };

export type Inspection = {
  /** Pass to startRouter({ inspect }). */
  inspect: (event: InspectionEvent) => void;
  /** Every inspection event, as it happens (what `inspect` is given). */
  events$: Observable<InspectionEvent>;
  metrics: RouterMetrics;
  /** The console's alerts (also logged and a /metrics gauge). */
  alerts: Alerts;
  /** Start serving this router (when inspect.enabled); resolves with the bound server. */
  attach(router: RunningRouter): Promise<InspectorServer | undefined>;
  /** Readiness goes false: the router is stopping. */
  setShuttingDown(): void;
  stop(): Promise<void>;
};

export function createInspection(config: RouterConfig, log: Logger): Inspection {
  const showPhi = config.inspect.showPhi;
  const metrics = new RouterMetrics();
  const alerts = new Alerts(log.child({ actor: 'alerts' }), metrics.registry);
  const model = new ConsoleModel();
  let alertTimer: NodeJS.Timeout | undefined;
  let metricsOfEvents: Subscription | undefined;
  const events = new RecentEvents();
  const stream = new Subject<InspectionEvent>();
  // A subscriber that throws would be reported by RxJS as an uncaught error: none of them may break the router.
  const safely = (fn: (event: InspectionEvent) => void) => (event: InspectionEvent) => {
    try {
      fn(event);
    } catch {
      // Inspection is a window on the router, never a reason for it to fail.
    }
  };
  // Metrics and recent events are only read through the inspector server: without it nobody subscribes
  // to them, and with no subscriber at all an inspection event costs one check (see `inspect`).
  const subscriptions: Subscription[] = config.inspect.enabled
    ? [stream.subscribe(safely((e) => metrics.observe(e))), stream.subscribe(safely((e) => events.observe(e)))]
    : [];
  const kept = subscriptions.length;
  let stately: { inspect: { next?: (e: InspectionEvent) => void }; stop(): void } | undefined;
  if (config.inspect.stately) {
    const url = config.inspect.stately.url;
    // Connects to that URL only (reconnecting every 5 s while it is down); nothing is fetched from elsewhere.
    stately = createWebSocketInspector({
      url,
      // Bytes become lengths (P-DATA payloads must not be serialized), PHI is masked.
      sanitizeContext: (c: unknown) => sanitize(c, { showPhi }) as never,
      sanitizeEvent: (e: unknown) => sanitize(e, { showPhi }) as never,
    }) as never;
    log.info({ url }, 'sending inspection events to the Stately Inspector');
    const target = stately as { inspect: { next?: (e: InspectionEvent) => void } };
    subscriptions.push(stream.subscribe(safely((e) => target.inspect.next?.(e))));
  }
  let shuttingDown = false;
  let server: InspectorServer | undefined;
  // Actions and microsteps (several per event) interest only the Stately Inspector.
  const everyKind = stately !== undefined;
  return {
    metrics,
    alerts,
    inspect: (event) => {
      if (!stream.observed) return;
      if (!everyKind && (event.type === '@xstate.action' || event.type === '@xstate.microstep')) return;
      stream.next(event);
    },
    events$: stream.asObservable(),
    async attach(router) {
      metrics.attach({
        queue: router.queue,
        peers: config.peers.map((p) => p.name),
        activeAssociations: () => new Map(config.listeners.map((l) => [l.name, listenerActive(router.actor, l.name)])),
      });
      const dead = cachedDeadLetters(router, config.peers.map((p) => p.name));
      // A dead letter made here is seen by the next evaluation, not 15 s later.
      subscriptions.push(router.events.of('forward-failed').subscribe((e) => e.outcome === 'dead' && dead.invalidate()));
      const consoleDeps: ConsoleDeps = {
        config, router, model,
        associationsOpen: () => config.listeners.reduce((n, l) => n + listenerActive(router.actor, l.name), 0),
        deadLetters: (peer) => dead.count(peer),
      };
      const evaluateAlerts = () => {
        try {
          return alerts.update(alertConditions(consoleDeps));
        } catch {
          return alerts.active(); // the router is stopping
        }
      };
      metricsOfEvents?.unsubscribe();
      metricsOfEvents = metrics.subscribe(router.events);
      // Alerts are logged and counted whether or not the console is served.
      alertTimer = setInterval(evaluateAlerts, ALERT_MS);
      alertTimer.unref();
      evaluateAlerts();
      if (!config.inspect.enabled) return undefined;
      subscriptions.push(model.subscribe(router.events));
      const started = await startInspectorServer(config, router, { metrics, events, stream, log, isShuttingDown: () => shuttingDown, console: consoleDeps, evaluateAlerts, queueChanged: () => dead.invalidate() });
      server = started;
      return started;
    },
    setShuttingDown() {
      shuttingDown = true;
    },
    async stop() {
      clearInterval(alertTimer);
      for (const s of subscriptions.splice(kept)) s.unsubscribe(); // the Stately Inspector's and the console's; metrics keep counting
      stately?.stop();
      await server?.close();
    },
  };
}

function listenerActive(root: AnyActorRef, name: string): number {
  const ref = root.system.get(listenerId(name)) as AnyActorRef | undefined;
  return ((ref?.getSnapshot() as { context?: { active?: unknown[] } } | undefined)?.context?.active ?? []).length;
}

type Deps = {
  metrics: RouterMetrics; events: RecentEvents; stream: Observable<InspectionEvent>; log: Logger; isShuttingDown: () => boolean;
  console: ConsoleDeps; evaluateAlerts: () => ReturnType<Alerts['active']>;
  /** A retry or purge through the API changed the queue. */
  queueChanged: () => void;
};

function startInspectorServer(config: RouterConfig, router: RunningRouter, deps: Deps): Promise<InspectorServer> {
  const { bind, port, token, showPhi } = config.inspect;
  const log = deps.log.child({ actor: 'inspector' });
  const page = readFileSync(PAGE, 'utf8');
  // Resolved and read at start: a missing package fails here, not when an operator opens the page.
  const require = createRequire(import.meta.url);
  const vendor = new Map(Object.entries(VENDOR).map(([path, v]) => [path, { body: readFileSync(require.resolve(v.file)), type: v.type }]));
  const root = router.actor as unknown as AnyActorRef;
  const peerNames = new Set(config.peers.map((p) => p.name));
  const depth = (peer: string) => {
    try {
      return router.queue.depth(peer);
    } catch {
      return { pending: 0, dead: 0 };
    }
  };
  const tree = () =>
    actorTree(root, (node, context) => {
      if (node.machine === 'completion') node.extra = { firesAt: context?.firesAt, hardLimitAt: context?.hardLimitAt };
      if (node.machine === 'peer') node.extra = { queue: depth(node.id.replace(/^peer:/, '').replace(/#\d+$/, '')), backoffUntil: context?.backoffUntil, nextDueAt: context?.nextDueAt };
    });

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    if (!token) return true;
    const header = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? url.searchParams.get('token') ?? '';
    const a = Buffer.from(header);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  const ready = () => {
    const listeners = config.listeners.map((l) => {
      const ref = root.system.get(listenerId(l.name)) as AnyActorRef | undefined;
      return { name: l.name, state: String((ref?.getSnapshot() as { value?: unknown } | undefined)?.value ?? 'absent') };
    });
    let spoolWritable = true;
    try {
      accessSync(router.spool.dir, constants.W_OK);
    } catch {
      spoolWritable = false;
    }
    let lmdbOpen = true;
    try {
      router.spool.count();
    } catch {
      lmdbOpen = false;
    }
    // A stopped journal refuses every C-STORE: a load balancer should send the modalities elsewhere.
    const ingestStopped = router.spool.ingestStopped;
    const ok = !deps.isShuttingDown() && listeners.every((l) => l.state === 'listening') && spoolWritable && lmdbOpen && !ingestStopped;
    return { ready: ok, shuttingDown: deps.isShuttingDown(), listeners, spoolWritable, lmdbOpen, ...(ingestStopped ? { ingestStopped } : {}) };
  };

  /** A running peer machine picks its items up now, not at its next idle wake-up, backoff end or half-open try. */
  const wakePeer = (peer: string): number => {
    const peerConfig = config.peers.find((p) => p.name === peer)!;
    let woken = 0;
    for (const slot of slotsOf(peerConfig)) {
      const ref = root.system.get(peerId(slot)) as AnyActorRef | undefined;
      ref?.send({ type: 'RETRY_REQUESTED' });
      if (ref) woken++;
    }
    return woken;
  };

  let consoleCache: { at: number; view: unknown } | undefined;
  const api = async (req: IncomingMessage, url: URL): Promise<[number, unknown]> => {
    const path = url.pathname;
    const queueAction = /^\/api\/queues\/([^/]+)\/(retry|purge)$/.exec(path);
    if (queueAction) {
      if (req.method !== 'POST') return [405, { error: 'use POST' }];
      const peer = decodeURIComponent(queueAction[1]);
      if (!peerNames.has(peer)) return [404, { error: `no peer named '${peer}'` }];
      consoleCache = undefined; // the next view shows what this changed
      deps.queueChanged();
      if (queueAction[2] === 'purge') return [200, { peer, purged: await router.queue.purge(peer) }];
      const count = await router.queue.retry(peer);
      wakePeer(peer);
      return [200, { peer, retried: count }];
    }
    // `router queue retry` edits the queue itself (it may name single items), then asks the running router
    // to try the peer now: out of its backoff or open circuit.
    const wake = /^\/api\/peers\/([^/]+)\/wake$/.exec(path);
    if (wake) {
      if (req.method !== 'POST') return [405, { error: 'use POST' }];
      const peer = decodeURIComponent(wake[1]);
      if (!peerNames.has(peer)) return [404, { error: `no peer named '${peer}'` }];
      consoleCache = undefined;
      deps.queueChanged();
      return [200, { peer, woken: wakePeer(peer) }];
    }
    if (req.method !== 'GET') return [405, { error: 'use GET' }];
    if (path === '/api/console') {
      // One view a second whatever the number of pages open: it scans the queues.
      if (!consoleCache || Date.now() - consoleCache.at >= CONSOLE_CACHE_MS) consoleCache = { at: Date.now(), view: consoleView(deps.console, deps.evaluateAlerts(), { showPhi }) };
      return [200, consoleCache.view];
    }
    if (path === '/api/alerts') return [200, deps.evaluateAlerts()];
    // Issue 17: nodes and their heartbeats, who holds which lease, the shared queue depths.
    if (path === '/api/cluster') return router.cluster ? [200, await router.cluster.status()] : [404, { error: 'this router is not a cluster node (no cluster section in its config)' }];
    if (path === '/api/actors') return [200, tree()];
    const one = /^\/api\/actors\/(.+)$/.exec(path);
    if (one) {
      const ref = findActor(root, decodeURIComponent(one[1]));
      if (!ref) return [404, { error: 'no such actor (it may have ended)' }];
      const snap = ref.getSnapshot() as { context?: unknown; value?: unknown; status?: string };
      return [200, {
        id: ref.id, sessionId: ref.sessionId, status: snap.status, value: snap.value,
        context: sanitize(snap.context, { showPhi }), events: deps.events.of(ref.sessionId, { showPhi }), diagram: stateDiagram(ref),
      }];
    }
    if (path === '/api/associations') return [200, associations(tree())];
    if (path === '/api/peers') return [200, peers(tree(), config, depth)];
    if (path === '/api/queues') {
      const only = url.searchParams.get('peer');
      return [200, config.peers.filter((p) => !only || p.name === only).map((p) => {
        // A waiting item's true next attempt: later than its own while the peer backs off or its circuit is open.
        const slots = peerSlots(root, p);
        const items = router.queue.list(p.name).slice(0, 200).map((i) => (i.state === 'pending' ? { ...i, nextAttempt: trueNextAttempt(i, slots) } : i));
        return { peer: p.name, ...depth(p.name), duplicates: p.duplicates, skipped: router.queue.skippedCount(p.name), items };
      })];
    }
    // Series/studies held for completion, soonest first (UIDs only: no PHI).
    if (path === '/api/completions') return [200, router.completion.waiting()];
    if (path === '/api/prefetch') return [200, prefetchJobs(tree(), root, router, showPhi)];
    if (path === '/api/rules') {
      const set = router.rules.current;
      return [200, { dir: router.rules.dir, loadedAt: set.loadedAt, files: set.files, rules: set.rules.map((r) => ({ name: r.name, priority: r.priority, continue: r.continue, file: r.file, line: r.line, then: r.then })), lastError: router.rules.lastError ?? null }];
    }
    return [404, { error: 'not found' }];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://inspector');
    const send = (status: number, body: string, type: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const json = (status: number, body: unknown) => send(status, `${JSON.stringify(body, null, 2)}\n`, 'application/json; charset=utf-8');
    if (url.pathname === '/healthz') return json(200, { status: 'up' });
    if (url.pathname === '/readyz') {
      const r = ready();
      return json(r.ready ? 200 : 503, r);
    }
    // The charting library holds no data, and a <script src> carries no bearer token: served to anyone.
    const asset = vendor.get(url.pathname);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'max-age=3600' });
      return res.end(asset.body);
    }
    if (!authorized(req, url)) {
      res.setHeader('www-authenticate', 'Bearer realm="dicom-router inspector"');
      return json(401, { error: 'a bearer token is required' });
    }
    // A web page elsewhere must not drive the queue through an operator's browser.
    if (req.method === 'POST' && req.headers.origin && new URL(req.headers.origin).host !== req.headers.host) return json(403, { error: 'cross-origin request refused' });
    if (url.pathname === '/' || url.pathname === '/index.html') return send(200, page, 'text/html; charset=utf-8');
    if (url.pathname === '/metrics') return send(200, await deps.metrics.metrics(), deps.metrics.contentType);
    if (url.pathname.startsWith('/api/')) {
      const [status, body] = await api(req, url);
      return json(status, body);
    }
    return json(404, { error: 'not found' });
  };

  const http: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      log.error({ err: err.message, url: req.url }, 'inspector request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err.message }));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://inspector');
    if (url.pathname !== '/ws' || !authorized(req, url)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const pushTree = (ws?: WebSocket) => {
    const message = JSON.stringify({ type: 'tree', at: new Date().toISOString(), tree: tree() });
    for (const client of ws ? [ws] : wss.clients) if (client.readyState === client.OPEN) client.send(message);
  };
  wss.on('connection', (ws) => pushTree(ws));
  // The tree changes when an actor starts or changes state; a busy association does so many times a
  // millisecond, so pushes are coalesced: the first change opens a PUSH_MS window, its end pushes once.
  const pushes = deps.stream
    .pipe(
      filter((e) => (e.type === '@xstate.snapshot' || e.type === '@xstate.actor') && wss.clients.size > 0),
      auditTime(PUSH_MS),
    )
    .subscribe(() => {
      try {
        pushTree();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'inspector push failed');
      }
    });

  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, bind, () => {
      const address = http.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      const host = bind.includes(':') ? `[${bind}]` : bind;
      const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${bound}`;
      log.info({ bind, port: bound, url, token: token ? 'required' : 'none', showPhi }, 'inspector listening');
      resolve({
        port: bound,
        url,
        close: () =>
          new Promise<void>((done) => {
            pushes.unsubscribe();
            for (const c of wss.clients) c.terminate();
            wss.close();
            http.closeAllConnections();
            http.close(() => done());
          }),
      });
    });
  });
}
