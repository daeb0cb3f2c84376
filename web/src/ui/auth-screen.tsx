import { Code, ConnectError } from "@connectrpc/connect";
import { useMutation } from "@connectrpc/connect-query";
import { login, signUp } from "@portico/gen/portico/auth/v1/auth-AuthService_connectquery.js";
import { type ChangeEvent, type FormEvent, useEffect, useRef, useState } from "react";
import { type FieldViolations, fieldViolations } from "../errors/field-violations.js";
import { Link } from "../router/router.js";
import { useSession } from "../session/use-session.js";
import { ErrorNotice } from "./error-notice.js";
import { TextField } from "./text-field.js";

export type AuthMode = "log-in" | "sign-up";

type FieldName = "display_name" | "email" | "password";
const fieldOrder: FieldName[] = ["display_name", "email", "password"];

/** Sign up or log in, with the server's field errors next to the fields they are about. */
export function AuthScreen({ mode }: { mode: AuthMode }) {
  const { session, state } = useSession();
  const signUpCall = useMutation(signUp);
  const loginCall = useMutation(login);
  const call = mode === "sign-up" ? signUpCall : loginCall;
  const [values, setValues] = useState<Record<FieldName, string>>({ display_name: "", email: "", password: "" });
  const inputs = useRef<Partial<Record<FieldName, HTMLInputElement | null>>>({});

  const violations: FieldViolations = call.error ? fieldViolations(call.error) : {};
  const fieldErrorCount = Object.keys(violations).length;

  // After a failed submit, move focus to the first field the server complained about.
  useEffect(() => {
    if (!call.error) return;
    const failed = fieldViolations(call.error);
    const first = fieldOrder.find((name) => failed[name]);
    if (first) inputs.current[first]?.focus();
  }, [call.error]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const res =
        mode === "sign-up"
          ? await signUpCall.mutateAsync({ email: values.email, password: values.password, displayName: values.display_name })
          : await loginCall.mutateAsync({ email: values.email, password: values.password });
      session.signIn(res.user, res.tokens);
    } catch {
      // Shown below from call.error.
    }
  };

  const title = mode === "sign-up" ? "Create your account" : "Log in to Portico";
  useEffect(() => {
    document.title = `${mode === "sign-up" ? "Sign up" : "Log in"} · Portico`;
  }, [mode]);
  const generalError = call.error && fieldErrorCount === 0;
  /** Props binding one input to its value, its ref (for focus) and the server's complaint about it. */
  const field = (name: FieldName) => ({
    name,
    value: values[name],
    onChange: (e: ChangeEvent<HTMLInputElement>) => setValues((v) => ({ ...v, [name]: e.target.value })),
    ref: (el: HTMLInputElement | null) => {
      inputs.current[name] = el;
    },
    error: violations[name] && sentence(violations[name]),
  });
  return (
    <main id="main" className="auth" tabIndex={-1}>
      <section className="card auth-card" aria-labelledby="auth-title">
        <p className="auth-brand" aria-hidden="true">
          ◆ Portico
        </p>
        <h1 id="auth-title">{title}</h1>
        {state.notice && !call.error && (
          <p className="notice notice-info" role="status">
            {state.notice}
          </p>
        )}
        <form onSubmit={submit} noValidate aria-busy={call.isPending}>
          {mode === "sign-up" && <TextField label="Display name" autoComplete="nickname" {...field("display_name")} />}
          <TextField label="Email" type="email" autoComplete={mode === "sign-up" ? "email" : "username"} {...field("email")} />
          <TextField
            label="Password"
            type="password"
            autoComplete={mode === "sign-up" ? "new-password" : "current-password"}
            hint={mode === "sign-up" ? "12 characters or more; a few unrelated words work well." : undefined}
            {...field("password")}
          />
          {generalError && <ErrorNotice error={call.error} message={authMessage(call.error, mode)} />}
          <button type="submit" className="button button-primary button-wide" disabled={call.isPending}>
            {call.isPending
              ? mode === "sign-up"
                ? "Creating account…"
                : "Logging in…"
              : mode === "sign-up"
                ? "Sign up"
                : "Log in"}
          </button>
        </form>
        <p className="auth-switch">
          {mode === "sign-up" ? (
            <>
              Already have an account? <Link to="/login">Log in</Link>
            </>
          ) : (
            <>
              New here? <Link to="/signup">Create an account</Link>
            </>
          )}
        </p>
      </section>
    </main>
  );
}

/** Words for the errors that mean something else on a login form than elsewhere. */
function authMessage(error: unknown, mode: AuthMode): string | undefined {
  const code = ConnectError.from(error).code;
  if (code === Code.Unauthenticated && mode === "log-in") return "That email and password do not match an account.";
  if (code === Code.AlreadyExists) return "An account with this email already exists. Log in instead.";
  return undefined;
}

/** "must be at least 8 characters" → "Must be at least 8 characters." */
function sentence(text: string): string {
  const trimmed = text.trim();
  const capitalised = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}
