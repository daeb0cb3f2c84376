import { Code } from "@connectrpc/connect";
import { useEffect, useState } from "react";
import { describeError } from "../errors/describe-error.js";
import { useSession } from "../session/use-session.js";

export interface ErrorNoticeProps {
  readonly error: unknown;
  /** Offered as a "Try again" button for errors worth retrying. */
  readonly onRetry?: () => void;
  /** Overrides the plain-words message (e.g. a login form's "wrong email or password"). */
  readonly message?: string;
}

/** An error in plain words, chosen by its code, with the one action that helps. */
export function ErrorNotice({ error, onRetry, message }: ErrorNoticeProps) {
  const description = describeError(error);
  const { session, state } = useSession();
  const secondsLeft = useCountdown(description.retryAfterSeconds);
  const waitText =
    description.code === Code.ResourceExhausted && secondsLeft !== undefined
      ? secondsLeft > 0
        ? `Too many requests right now. Try again in ${secondsLeft} second${secondsLeft === 1 ? "" : "s"}.`
        : "You can try again now."
      : undefined;
  return (
    <div className="notice notice-error" role="alert" data-code={Code[description.code]}>
      <p className="notice-title">{description.title}</p>
      <p>{message ?? waitText ?? description.message}</p>
      {description.action === "log-in" && state.status === "signed-in" && (
        <button type="button" className="button button-secondary" onClick={() => session.expire("Please log in again.")}>
          Log in
        </button>
      )}
      {onRetry && (description.action === "retry" || description.action === "wait") && (
        <button
          type="button"
          className="button button-secondary"
          onClick={onRetry}
          disabled={secondsLeft !== undefined && secondsLeft > 0}
        >
          Try again
        </button>
      )}
    </div>
  );
}

function useCountdown(seconds: number | undefined): number | undefined {
  const [deadline] = useState(() => (seconds === undefined ? undefined : Date.now() + seconds * 1000));
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    if (deadline === undefined) return;
    const interval = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= deadline) clearInterval(interval);
    }, 1000);
    return () => clearInterval(interval);
  }, [deadline]);
  return deadline === undefined ? undefined : Math.max(0, Math.ceil((deadline - now) / 1000));
}
