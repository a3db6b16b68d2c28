// One process owns the journal (the router): a second one replaying or appending would corrupt it.
// The owner writes `<journal>/owner` = "<pid> <process start time>"; a lock whose process is gone (a
// SIGKILL) or whose pid now names another process (same pid, other start time) is stale and taken
// over. Other processes (the CLI while the router runs) open the spool without ingest, journal untouched.
import * as fs from 'node:fs';
import path from 'node:path';

function startTime(pid: number): string | undefined {
  try {
    // Field 22 of /proc/<pid>/stat (after the parenthesised command name): start time in clock ticks.
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Take the journal for this process; throws if a live process holds it. Returns the release function. */
export function claimJournal(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'owner');
  const me = `${process.pid} ${startTime(process.pid) ?? '?'}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, me, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === me) fs.rmSync(file, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [pid, started] = fs.readFileSync(file, 'utf8').split(' ');
    const live = startTime(Number(pid));
    if (live !== undefined && live === started) {
      throw new Error(`the spool's journal (${dir}) is in use by process ${pid}: open the spool with ingest: false to read it alongside`);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new Error(`could not take the spool's journal (${dir})`);
}
