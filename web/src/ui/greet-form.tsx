import { createConnectQueryKey, useMutation } from "@connectrpc/connect-query";
import { greet, listGreetings } from "@portico/gen/portico/greeter/v1/greeter-GreeterService_connectquery.js";
import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { ErrorNotice } from "./error-notice.js";
import { LanguageSelect } from "./language-select.js";
import { TextField } from "./text-field.js";

/**
 * Greet through the generated `greet` hook, in the language chosen here; a new greeting refreshes
 * the history by invalidation. When the lang service could not answer, the greeting says so.
 */
export function GreetForm({ defaultName = "" }: { defaultName?: string }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState(defaultName);
  const call = useMutation(greet, {
    onSuccess: () =>
      queryClient.invalidateQueries({ queryKey: createConnectQueryKey({ schema: listGreetings, cardinality: undefined }) }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    call.mutate({ name });
  };
  return (
    <section className="card" aria-labelledby="greet-title">
      <h2 id="greet-title">Say hello</h2>
      <LanguageSelect />
      <form className="inline-form" onSubmit={submit} aria-busy={call.isPending}>
        <TextField label="Name" name="name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" className="button button-primary" disabled={call.isPending}>
          {call.isPending ? "Greeting…" : "Greet"}
        </button>
      </form>
      <div aria-live="polite">
        {call.data && (
          <output className="greeting" data-testid="greeting" lang={call.data.language}>
            {call.data.greeting}
          </output>
        )}
        {call.data?.languageFallback && (
          <p className="muted" data-testid="language-fallback">
            In English: {call.data.languageFallbackReason}.
          </p>
        )}
      </div>
      {call.error && <ErrorNotice error={call.error} onRetry={() => call.mutate({ name })} />}
    </section>
  );
}
