// What the soak checks besides the traffic: a per-user rate limit holds across both gateways (they
// share Redis), a logout through one gateway is refused by the other within 1 s, and at the end
// every acknowledged write is there to read.
import { Code, ConnectError } from "@connectrpc/connect";
import { type GatewayClients, greetingNames, type SoakUser, signUp } from "./soak-traffic.js";

const bearer = (token: string) => ({ timeoutMs: 10_000, headers: { authorization: `Bearer ${token}` } });

/** An idempotent read, tried again a few times: at the end the platform is whole, a failure is a restart's tail. */
async function settled<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (attempt >= 5 || (code !== Code.Unavailable && code !== Code.DeadlineExceeded)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

export interface RateLimitCheck {
  ok: number;
  limited: number;
  /** The most a 60/min bucket can let through in the time the calls took. */
  allowed: number;
  pass: boolean;
}

/** SetLanguage is 60/min per user: 90 calls alternating between the gateways let at most 60 (+ refill) through. */
export async function checkRateLimit(clients: GatewayClients[]): Promise<RateLimitCheck> {
  const user = await signUp(clients[0]!);
  const started = Date.now();
  let ok = 0;
  let limited = 0;
  const calls = Array.from({ length: 90 }, (_, i) => i);
  const worker = async () => {
    for (let i = calls.shift(); i !== undefined; i = calls.shift()) {
      try {
        await clients[i % clients.length]!.lang.setLanguage({ language: "es" }, bearer(user.token));
        ok++;
      } catch (error) {
        if (ConnectError.from(error).code !== Code.ResourceExhausted) throw error;
        limited++;
      }
    }
  };
  await Promise.all(Array.from({ length: 10 }, worker));
  const allowed = 60 + Math.ceil((Date.now() - started) / 1000);
  return { ok, limited, allowed, pass: ok <= allowed && ok >= 60 && ok + limited === 90 };
}

export interface LogoutCheck {
  /** From Logout's answer on one gateway to the first refusal on the other; undefined when none came within 5 s. */
  refusedAfterMs: number | undefined;
  pass: boolean;
}

/** Logout through gateway 0 of a token gateway 1 has cached; gateway 1 must refuse it within 1 s. */
export async function checkLogout(clients: GatewayClients[]): Promise<LogoutCheck> {
  const [a, b] = clients as [GatewayClients, GatewayClients];
  const user = await signUp(a);
  await b.greeter.listGreetings({ pageSize: 1 }, bearer(user.token));
  await a.auth.logout({ refreshToken: user.refreshToken }, bearer(user.token));
  const loggedOut = Date.now();
  while (Date.now() - loggedOut < 5000) {
    try {
      await b.greeter.listGreetings({ pageSize: 1 }, bearer(user.token));
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unauthenticated) {
        const refusedAfterMs = Date.now() - loggedOut;
        return { refusedAfterMs, pass: refusedAfterMs <= 1000 };
      }
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { refusedAfterMs: undefined, pass: false };
}

export interface WritesCheck {
  acknowledged: number;
  lost: number;
  /** Greetings stored more than once: a non-idempotent call the platform sent twice. */
  duplicated: number;
  examples: string[];
}

/** Reads back every acknowledged account (GetMe) and greeting (the user's whole history). */
export async function checkWrites(clients: GatewayClients[], users: SoakUser[], signedUp: SoakUser[]): Promise<WritesCheck> {
  const result: WritesCheck = { acknowledged: 0, lost: 0, duplicated: 0, examples: [] };
  const lose = (what: string) => {
    result.lost++;
    if (result.examples.length < 10) result.examples.push(what);
  };
  let turn = 0;
  const next = () => clients[turn++ % clients.length]!;
  for (const user of signedUp) {
    result.acknowledged++;
    try {
      const me = await settled(() => next().auth.getMe({}, bearer(user.token)));
      if (me.user?.email !== user.email) lose(`account ${user.email}: GetMe answered ${me.user?.email}`);
    } catch (error) {
      lose(`account ${user.email}: ${ConnectError.from(error).message}`);
    }
  }
  for (const user of users) {
    if (user.greeted.length === 0) continue;
    result.acknowledged += user.greeted.length;
    const stored = new Map<string, number>();
    let pageToken = "";
    try {
      do {
        const page = await settled(() => next().greeter.listGreetings({ pageSize: 100, pageToken }, bearer(user.token)));
        for (const g of page.greetings)
          for (const name of greetingNames(g.message)) stored.set(name, (stored.get(name) ?? 0) + 1);
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch (error) {
      for (const name of user.greeted) lose(`greeting ${name} of ${user.email}: ${ConnectError.from(error).message}`);
      continue;
    }
    for (const name of user.greeted) if (!stored.has(name)) lose(`greeting ${name} of ${user.email}`);
    for (const count of stored.values()) if (count > 1) result.duplicated += count - 1;
  }
  return result;
}
