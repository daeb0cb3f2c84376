import { useEffect } from "react";
import { RouterProvider, useRouter } from "./router/router.js";
import { useSession } from "./session/use-session.js";
import { AppShell } from "./ui/app-shell.js";
import { AuthScreen } from "./ui/auth-screen.js";
import { GreetForm } from "./ui/greet-form.js";
import { HistoryPanel } from "./ui/history-panel.js";
import { ProfileScreen } from "./ui/profile-screen.js";
import { ScreenTitle } from "./ui/screen-title.js";
import { StreamScreen } from "./ui/stream-screen.js";

/** The whole app; wrap it in <PorticoProvider>. */
export function App() {
  return (
    <RouterProvider>
      <Screens />
    </RouterProvider>
  );
}

function Screens() {
  const { state } = useSession();
  const { path, navigate } = useRouter();
  const onAuthPath = path === "/login" || path === "/signup";

  // Signed in on a login URL: go home. (Signed out anywhere else: the login form shows in place, so
  // after logging in the user is still on the page they asked for.)
  useEffect(() => {
    if (state.status === "signed-in" && onAuthPath) navigate("/", { replace: true });
  }, [state.status, onAuthPath, navigate]);

  if (state.status === "restoring") {
    return (
      <main id="main" className="restoring" aria-busy="true">
        <p role="status">
          <span className="spinner" aria-hidden="true" /> Restoring your session…
        </p>
      </main>
    );
  }
  if (state.status === "signed-out") {
    return <AuthScreen key={path} mode={path === "/signup" ? "sign-up" : "log-in"} />;
  }
  const firstName = state.user?.displayName ?? "";
  return (
    <AppShell>
      {path === "/stream" ? (
        <StreamScreen defaultName={firstName} />
      ) : path === "/history" ? (
        <>
          <ScreenTitle title="History" />
          <HistoryPanel pageSize={20} />
        </>
      ) : path === "/profile" ? (
        <ProfileScreen />
      ) : path === "/" || onAuthPath ? (
        <>
          <ScreenTitle title={`Hello${firstName ? `, ${firstName}` : ""}`} />
          <div className="grid">
            <GreetForm defaultName={firstName} />
            <HistoryPanel pageSize={5} />
          </div>
        </>
      ) : (
        <>
          <ScreenTitle title="Page not found" />
          <p className="card">There is nothing at {path}. Use the navigation above.</p>
        </>
      )}
    </AppShell>
  );
}
