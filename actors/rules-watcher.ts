// The rules actor: loads routing-rules/*.yaml at start, watches the folder, and hot-reloads. An
// invalid edit is refused with its located error logged, and the previous rule set stays in force
// (DESIGN property 3). Associations take the rule set current when they are established.
import { existsSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { loadRuleFiles, RulesError } from '../routing/rules-loader.ts';
import type { RuleSet } from '../routing/rule.types.ts';

/** Edits arrive as several file events (truncate, write, rename): reload once they settle. */
const SETTLE_MS = 150;

export class RulesWatcher {
  readonly dir: string;
  private readonly peers: string[];
  private readonly log: Logger;
  private ruleSet: RuleSet;
  private lastErrorText: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(rules: RuleSet) => void>();

  private constructor(dir: string, peers: string[], log: Logger, initial: RuleSet) {
    this.dir = dir;
    this.peers = peers;
    this.log = log;
    this.ruleSet = initial;
  }

  /** Loads the rules; at start an invalid rule file is fatal (there is no previous set to keep). */
  static start(dir: string, peers: string[], log: Logger, opts: { watch?: boolean } = {}): RulesWatcher {
    if (!existsSync(dir)) {
      // No rules folder: nothing is forwarded (instances are still stored). Create it and restart to route.
      log.warn({ dir }, 'routing rules folder does not exist: no rules, nothing will be forwarded');
      return new RulesWatcher(dir, peers, log, { rules: [], files: [], loadedAt: new Date().toISOString() });
    }
    const w = new RulesWatcher(dir, peers, log, loadRuleFiles(dir, { peers }));
    log.info({ dir, rules: w.ruleSet.rules.map((r) => r.name), files: w.ruleSet.files }, 'routing rules loaded');
    if (opts.watch ?? true) w.watch();
    return w;
  }

  get current(): RuleSet {
    return this.ruleSet;
  }

  /** The located error of the last refused reload, if the files on disk are not what is in force. */
  get lastError(): string | undefined {
    return this.lastErrorText;
  }

  onReload(listener: (rules: RuleSet) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-read the folder now; returns whether the new rules are in force. */
  reload(): boolean {
    try {
      this.ruleSet = loadRuleFiles(this.dir, { peers: this.peers });
    } catch (err) {
      this.lastErrorText = err instanceof RulesError ? err.message : String(err as Error);
      this.log.error({ dir: this.dir, error: this.lastErrorText }, 'routing rules refused; the previous rules stay in force');
      return false;
    }
    this.lastErrorText = undefined;
    this.log.info({ rules: this.ruleSet.rules.map((r) => r.name), files: this.ruleSet.files }, 'routing rules reloaded');
    for (const l of this.listeners) l(this.ruleSet);
    return true;
  }

  private watch(): void {
    this.watcher = watch(this.dir, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), SETTLE_MS);
    });
    this.watcher.on('error', (err) => this.log.error({ dir: this.dir, err: err.message }, 'cannot watch the rules folder'));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
