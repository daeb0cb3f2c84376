import { Code, ConnectError } from "@connectrpc/connect";
import { QueryClient } from "@tanstack/react-query";

/** Codes worth asking again for: the platform was briefly unreachable or slow. */
const transient = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal]);

/** TanStack Query defaults for Portico: retry only transient failures, never a refused or invalid call. */
export function createPorticoQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 10_000,
        retry: (failures, error) => failures < 2 && transient.has(ConnectError.from(error).code),
        refetchOnWindowFocus: false,
      },
      mutations: { retry: false },
    },
  });
}
