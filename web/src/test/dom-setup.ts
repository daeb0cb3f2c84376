import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

// Real servers on a shared 2-core machine: give findBy*/waitFor more than the default 1 s.
configure({ asyncUtilTimeout: 8_000 });

// Unmount what a test rendered (its session timers and streams stop with it).
afterEach(() => {
  cleanup();
  window.history.replaceState(null, "", "/");
  window.localStorage.clear();
});
