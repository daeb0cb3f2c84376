import { type FormEvent, useEffect, useRef, useState } from "react";
import { useGreetStream } from "../rpc/use-greet-stream.js";
import { ErrorNotice } from "./error-notice.js";
import { ScreenTitle } from "./screen-title.js";
import { TextField } from "./text-field.js";

/** GreetStream live: messages appear as the server sends them, and the stream can be stopped. */
export function StreamScreen({ defaultName = "" }: { defaultName?: string }) {
  const stream = useGreetStream();
  const [name, setName] = useState(defaultName);
  const [count, setCount] = useState("5");
  const [interval, setIntervalMs] = useState("700");
  const streaming = stream.status === "streaming";
  const toggle = useRef<HTMLButtonElement>(null);

  // Start and Stop swap places; when the one that had focus goes away, give focus to the other,
  // so a keyboard user can stop the stream they just started (and start the next) without hunting.
  const wasStreaming = useRef(streaming);
  useEffect(() => {
    if (wasStreaming.current === streaming) return;
    wasStreaming.current = streaming;
    if (document.activeElement === document.body || document.activeElement === null) toggle.current?.focus();
  }, [streaming]);

  const run = () => void stream.start({ name, count: clamp(count, 1, 50, 5), intervalMs: clamp(interval, 0, 5000, 700) });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    run();
  };

  return (
    <>
      <ScreenTitle title="Live stream" />
      <section className="card" aria-labelledby="stream-form-title">
        <h2 id="stream-form-title">Start a stream</h2>
        <p className="muted">GreetStream sends one greeting at a time; each appears the moment it arrives.</p>
        <form className="inline-form" onSubmit={submit}>
          <TextField
            label="Name"
            name="name"
            autoComplete="off"
            value={name}
            onChange={(e) => setName(e.target.value)}
            disabled={streaming}
          />
          <TextField
            label="How many"
            name="count"
            type="number"
            inputMode="numeric"
            min={1}
            max={50}
            value={count}
            onChange={(e) => setCount(e.target.value)}
            disabled={streaming}
          />
          <TextField
            label="Every (ms)"
            name="interval"
            type="number"
            inputMode="numeric"
            min={0}
            max={5000}
            step={100}
            value={interval}
            onChange={(e) => setIntervalMs(e.target.value)}
            disabled={streaming}
          />
          {/* Distinct keys: the Stop button must not become the submit button in place, or the click that
              stops the stream (re-rendered before its default action runs) would submit the form again. */}
          {streaming ? (
            <button key="stop" ref={toggle} type="button" className="button button-danger" onClick={stream.stop}>
              Stop
            </button>
          ) : (
            <button key="start" ref={toggle} type="submit" className="button button-primary">
              Start stream
            </button>
          )}
        </form>
      </section>
      <section className="card" aria-labelledby="stream-messages-title">
        <div className="card-header">
          <h2 id="stream-messages-title">Messages</h2>
          <p className="stream-status" role="status" data-testid="stream-status" data-status={stream.status}>
            {statusText(stream.status, stream.messages.length, stream.expected)}
          </p>
        </div>
        {stream.status === "streaming" && (
          <progress max={stream.expected} value={stream.messages.length} aria-label="Stream progress" />
        )}
        {stream.messages.length === 0 ? (
          <p className="empty">{stream.status === "streaming" ? "Waiting for the first message…" : "Nothing streamed yet."}</p>
        ) : (
          <ol className="stream" aria-label="Streamed greetings" aria-live="polite">
            {stream.messages.map((m) => (
              <li key={m.index} lang={m.language || undefined}>
                <span className="badge">#{m.index + 1}</span> {m.greeting}
              </li>
            ))}
          </ol>
        )}
        {stream.status === "failed" && <ErrorNotice error={stream.error} onRetry={run} />}
      </section>
    </>
  );
}

function statusText(status: string, received: number, expected: number): string {
  switch (status) {
    case "streaming":
      return `Streaming… ${received} of ${expected}`;
    case "done":
      return `Done: ${received} greeting${received === 1 ? "" : "s"}`;
    case "stopped":
      return `Stopped after ${received} of ${expected}`;
    case "failed":
      return `Failed after ${received} of ${expected}`;
    default:
      return "Idle";
  }
}

function clamp(value: string, min: number, max: number, fallback: number): number {
  const n = Math.round(Number(value));
  return Number.isFinite(n) && value.trim() !== "" ? Math.min(max, Math.max(min, n)) : fallback;
}
