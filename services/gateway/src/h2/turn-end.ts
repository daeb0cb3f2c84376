/** A session with frames queued in the current event-loop turn. */
export interface TurnEndFlush {
  /** Writes what it queued (one write per socket). */
  flush(): void;
}

// All sessions with frames waiting go out together once the current event-loop turn is done.
// An array, not a Set: a Set cleared every turn leaves a chain of dead tables (see stream-table.ts).
// A session is in it at most once per `queued` (one flushed early by `flushAlone` may come again).
let dirty: TurnEndFlush[] = [];
let flushScheduled = false;
let turnEnd: (() => void)[] = [];
function flushAll(): void {
  try {
    // What waited for the turn's end goes first, so the frames it queues leave in this flush.
    while (turnEnd.length > 0) {
      const callbacks = turnEnd;
      turnEnd = [];
      for (const callback of callbacks) callback();
    }
  } finally {
    // A callback that broke its promise not to throw must not stop every session's writes.
    flushScheduled = false;
    const sessions = dirty;
    dirty = [];
    for (const session of sessions) session.flush();
  }
}

/**
 * Runs `callback` once the current event-loop turn's reads are done, just before the frames queued
 * in it go out: what it sends leaves in the same writes. It must not throw.
 */
export function atTurnEnd(callback: () => void): void {
  turnEnd.push(callback);
  schedule();
}

/**
 * Flushes `session` once the current event-loop turn is done, with every other session that queued
 * frames in it. The caller adds a session at most once until its `flush` runs.
 */
export function flushAtTurnEnd(session: TurnEndFlush): void {
  dirty.push(session);
  schedule();
}

function schedule(): void {
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}
