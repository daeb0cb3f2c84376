import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { StreamEvents } from "../../src/h2/stream-events.js";

/** The same script of listener changes and events on `emitter`, what ran in which order. */
function script(emitter: StreamEvents | EventEmitter): string[] {
  const seen: string[] = [];
  const a = () => seen.push("a");
  const b = () => {
    seen.push("b");
    // Added during the emit: not called by this emit (a snapshot), called by the next.
    emitter.on("x", () => seen.push("late"));
  };
  emitter.on("x", a);
  emitter.once("x", (value: number) => seen.push(`once ${value}`));
  emitter.on("x", b);
  emitter.on("x", a);
  emitter.emit("x", 1);
  emitter.removeListener("x", b);
  // Removes the latest `a` only.
  emitter.off("x", a);
  seen.push(`count ${emitter.listenerCount("x")}`);
  emitter.emit("x", 2);
  const never = () => seen.push("never");
  emitter.once("y", never);
  emitter.off("y", never);
  seen.push(`y ${emitter.emit("y")}`);
  emitter.removeAllListeners("x");
  seen.push(`x ${emitter.emit("x")}`);
  return seen;
}

describe("StreamEvents", () => {
  it("runs, adds and removes listeners as node's EventEmitter does", () => {
    const expected = script(new EventEmitter());
    expect(expected).toEqual(["a", "once 1", "b", "a", "count 2", "a", "late", "y false", "x false"]);
    expect(script(new StreamEvents())).toEqual(expected);
  });

  it("throws an 'error' nobody listens for, and hands it to a listener otherwise", () => {
    const events = new StreamEvents();
    const failure = new Error("reset");
    expect(() => events.emit("error", failure)).toThrow(failure);
    const seen: unknown[] = [];
    events.on("error", (error: unknown) => seen.push(error));
    expect(events.emit("error", failure)).toBe(true);
    expect(seen).toEqual([failure]);
  });
});
