import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useInfiniteQuery } from "@connectrpc/connect-query";
import { listGreetings } from "@portico/gen/portico/greeter/v1/greeter-GreeterService_connectquery.js";
import { ErrorNotice } from "./error-notice.js";

export interface HistoryPanelProps {
  readonly pageSize?: number;
  readonly headingLevel?: 1 | 2;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** The caller's own greetings, newest first, a page at a time (ListGreetings with page tokens). */
export function HistoryPanel({ pageSize = 10, headingLevel = 2 }: HistoryPanelProps) {
  const query = useInfiniteQuery(
    listGreetings,
    { pageSize, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (page) => page.nextPageToken || undefined },
  );
  const greetings = query.data?.pages.flatMap((page) => page.greetings) ?? [];
  const Heading = headingLevel === 1 ? "h1" : "h2";
  return (
    <section className="card" aria-labelledby="history-title" aria-busy={query.isFetching}>
      <div className="card-header">
        <Heading id="history-title" tabIndex={headingLevel === 1 ? -1 : undefined}>
          Your greetings
        </Heading>
        {query.isFetching && !query.isPending && <span className="spinner" role="status" aria-label="Refreshing" />}
      </div>
      {query.isPending ? (
        <p className="muted" role="status">
          Loading your greetings…
        </p>
      ) : query.error && greetings.length === 0 ? (
        <ErrorNotice error={query.error} onRetry={() => void query.refetch()} />
      ) : greetings.length === 0 ? (
        <p className="empty">No greetings yet. Say hello and it will show up here.</p>
      ) : (
        <>
          <ol className="history" aria-label="Greeting history">
            {greetings.map((g) => (
              <li key={g.id}>
                <span className="history-message">{g.message}</span>
                {g.createdAt && (
                  <time className="muted" dateTime={timestampDate(g.createdAt).toISOString()}>
                    {timeFormat.format(timestampDate(g.createdAt))}
                  </time>
                )}
              </li>
            ))}
          </ol>
          {query.hasNextPage && (
            <button
              type="button"
              className="button button-secondary"
              onClick={() => void query.fetchNextPage()}
              disabled={query.isFetchingNextPage}
            >
              {query.isFetchingNextPage ? "Loading…" : "Show older greetings"}
            </button>
          )}
          {query.error && <ErrorNotice error={query.error} onRetry={() => void query.refetch()} />}
        </>
      )}
    </section>
  );
}
