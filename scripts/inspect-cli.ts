// `router inspect [--json]`: the running router's actor tree from its inspector server, live in a
// terminal (redrawn on each change; plain appended snapshots when not a TTY), or once as JSON.
import WebSocket from 'ws';
import type { RouterConfig } from '../config/config.ts';
import type { ActorNode } from '../actors/observe/inspector-model.ts';

export type InspectCliOptions = { url?: string; token?: string; json?: boolean; once?: boolean };

/** The inspector's base URL from the configuration (a wildcard bind is reached on loopback). */
export function inspectorUrl(config: RouterConfig): string {
  const { bind, port } = config.inspect;
  const host = bind === '0.0.0.0' ? '127.0.0.1' : bind === '::' ? '[::1]' : bind.includes(':') ? `[${bind}]` : bind;
  return `http://${host}:${port}`;
}

/** One line per actor, indented by depth: id, machine, state, summary, queue. */
export function treeText(node: ActorNode, depth = 0): string[] {
  const extra = node.extra?.queue as { pending: number; dead: number } | undefined;
  const parts = [
    `${'  '.repeat(depth)}${node.id}`,
    `(${node.machine})`,
    `[${node.state.join(', ') || node.status}]`,
    node.summary ?? '',
    extra ? `queue ${extra.pending}, dead ${extra.dead}` : '',
  ].filter(Boolean);
  return [parts.join(' '), ...node.children.flatMap((c) => treeText(c, depth + 1))];
}

export async function fetchTree(url: string, token?: string): Promise<ActorNode> {
  const res = await fetch(`${url}/api/actors`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status === 401) throw new Error('the inspector wants a token: pass --token or set inspect.token in the config');
  if (!res.ok) throw new Error(`inspector answered ${res.status}`);
  return (await res.json()) as ActorNode;
}

export async function runInspect(baseUrl: string, opts: InspectCliOptions, out: NodeJS.WriteStream = process.stdout): Promise<void> {
  if (opts.json || opts.once) {
    const tree = await fetchTree(baseUrl, opts.token);
    out.write(opts.json ? `${JSON.stringify(tree, null, 2)}\n` : `${treeText(tree).join('\n')}\n`);
    return;
  }
  const wsUrl = `${baseUrl.replace(/^http/, 'ws')}/ws${opts.token ? `?token=${encodeURIComponent(opts.token)}` : ''}`;
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    ws.on('unexpected-response', (_req, res) => reject(new Error(res.statusCode === 401 ? 'the inspector wants a token: pass --token or set inspect.token in the config' : `inspector answered ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('close', () => resolve());
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { type: string; at: string; tree: ActorNode };
      if (msg.type !== 'tree') return;
      const text = `${treeText(msg.tree).join('\n')}\n`;
      // A terminal gets the tree redrawn in place; a pipe gets each snapshot, separated by its time.
      if (out.isTTY) out.write(`\x1b[H\x1b[2J${msg.at}  (Ctrl-C to quit)\n${text}`);
      else out.write(`--- ${msg.at}\n${text}`);
    });
    process.once('SIGINT', () => ws.close());
  });
}
