import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { getMe, logoutAll } from "@portico/gen/portico/auth/v1/auth-AuthService_connectquery.js";
import { useSession } from "../session/use-session.js";
import { ErrorNotice } from "./error-notice.js";
import { ScreenTitle } from "./screen-title.js";

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "long" });

/** Who the platform thinks you are (GetMe), and a way to end every session. */
export function ProfileScreen() {
  const { session } = useSession();
  const me = useQuery(getMe, {});
  const endAll = useMutation(logoutAll, {
    onSuccess: () => session.signOut().catch(() => session.expire("You were logged out on all devices.")),
  });
  const user = me.data?.user;
  return (
    <>
      <ScreenTitle title="Profile" />
      <section className="card" aria-labelledby="profile-title" aria-busy={me.isPending}>
        <h2 id="profile-title">Your account</h2>
        {me.isPending ? (
          <p className="muted" role="status">
            Loading your profile…
          </p>
        ) : me.error ? (
          <ErrorNotice error={me.error} onRetry={() => void me.refetch()} />
        ) : user ? (
          <dl className="profile">
            <dt>Display name</dt>
            <dd data-testid="profile-name">{user.displayName || "—"}</dd>
            <dt>Email</dt>
            <dd data-testid="profile-email">{user.email}</dd>
            <dt>Tier</dt>
            <dd>{user.tier || "—"}</dd>
            <dt>Roles</dt>
            <dd>{user.roles.length > 0 ? user.roles.join(", ") : "none"}</dd>
            <dt>Member since</dt>
            <dd>{user.createdAt ? dateFormat.format(timestampDate(user.createdAt)) : "—"}</dd>
            <dt>User id</dt>
            <dd>
              <code>{user.id}</code>
            </dd>
          </dl>
        ) : (
          <p className="empty">No profile returned.</p>
        )}
      </section>
      <section className="card" aria-labelledby="sessions-title">
        <h2 id="sessions-title">Sessions</h2>
        <p className="muted">Logging out everywhere ends this session and every other one, on every device.</p>
        <button type="button" className="button button-secondary" onClick={() => endAll.mutate({})} disabled={endAll.isPending}>
          {endAll.isPending ? "Logging out…" : "Log out on all devices"}
        </button>
        {endAll.error && <ErrorNotice error={endAll.error} onRetry={() => endAll.mutate({})} />}
      </section>
    </>
  );
}
