import { createConnectQueryKey, useMutation, useQuery } from "@connectrpc/connect-query";
import { getLanguage, listLanguages, setLanguage } from "@portico/gen/portico/lang/v1/lang-LanguageService_connectquery.js";
import { useQueryClient } from "@tanstack/react-query";
import { useId } from "react";
import { ErrorNotice } from "./error-notice.js";

/**
 * The caller's greeting language: the choices from the public ListLanguages, the current choice
 * from GetLanguage, a change through SetLanguage (shown at once, then confirmed by a refetch).
 */
export function LanguageSelect() {
  const id = useId();
  const queryClient = useQueryClient();
  const languages = useQuery(listLanguages);
  const current = useQuery(getLanguage);
  const change = useMutation(setLanguage, {
    onSettled: () =>
      queryClient.invalidateQueries({ queryKey: createConnectQueryKey({ schema: getLanguage, cardinality: undefined }) }),
  });
  const error = languages.error ?? current.error;
  if (error) {
    return <ErrorNotice error={error} onRetry={() => void Promise.all([languages.refetch(), current.refetch()])} />;
  }
  const ready = languages.data !== undefined && current.data !== undefined;
  const value = change.isPending ? change.variables.language : (current.data?.language ?? "");
  return (
    <div className="field">
      <label htmlFor={id}>Greeting language</label>
      <select
        id={id}
        value={value}
        disabled={!ready || change.isPending}
        aria-busy={!ready || change.isPending}
        onChange={(e) => change.mutate({ language: e.target.value })}
      >
        {!ready && <option value="">Loading…</option>}
        {languages.data?.languages.map((language) => (
          <option key={language.code} value={language.code} lang={language.code}>
            {language.nativeName === language.name ? language.name : `${language.nativeName} (${language.name})`}
          </option>
        ))}
      </select>
      {change.error && <ErrorNotice error={change.error} />}
    </div>
  );
}
