// The soak's users and traffic: sign-ups, greetings (written to history), history reads,
// greeting streams, profile and language reads, spread over both gateways at a steady rate. A
// non-idempotent call is never sent twice. As a load balancer in front of the gateways would, a
// call whose connection was refused (nothing sent) and an idempotent call that met `unavailable`
// or a reset connection go once to the other gateway.
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { LanguageService } from "@portico/gen/portico/lang/v1/lang_pb.js";

export interface GatewayClients {
  url: string;
  auth: Client<typeof AuthService>;
  greeter: Client<typeof GreeterService>;
  lang: Client<typeof LanguageService>;
}

export function gatewayClients(url: string): GatewayClients {
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true });
  return {
    url,
    auth: createClient(AuthService, transport),
    greeter: createClient(GreeterService, transport),
    lang: createClient(LanguageService, transport),
  };
}

export interface SoakUser {
  email: string;
  password: string;
  token: string;
  refreshToken: string;
  /** Names of the greetings the platform acknowledged for this user. */
  greeted: string[];
}

export const soakPassword = "correct horse battery staple";
let sequence = 0;
const runId = Date.now().toString(36);
/** A client address of its own per sign-up: the per-IP sign-up limits are not what the soak measures. */
export const randomClientAddress = () =>
  `10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;

const callOptions = (token?: string, headers: Record<string, string> = {}) => ({
  timeoutMs: 10_000,
  headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers,
});

/** Signs up a new user through `clients`; the account is an acknowledged write once this resolves. */
export async function signUp(clients: GatewayClients): Promise<SoakUser> {
  const email = `soak-${runId}-${++sequence}@example.com`;
  const res = await clients.auth.signUp(
    { email, password: soakPassword, displayName: "Soak" },
    callOptions(undefined, { "x-forwarded-for": randomClientAddress() }),
  );
  return { email, password: soakPassword, token: res.tokens!.accessToken, refreshToken: res.tokens!.refreshToken, greeted: [] };
}

/** A greeting name no other greeting of the run has: found again in the history by it. */
export const greetingName = () => `n${++sequence}x`;
export const greetingNames = (message: string) => message.match(/n\d+x/g) ?? [];

type Op = "signUp" | "greet" | "listGreetings" | "greetStream" | "getMe" | "getLanguage";
const mix: [Op, number][] = [
  ["signUp", 3],
  ["greet", 35],
  ["listGreetings", 30],
  ["greetStream", 12],
  ["getMe", 10],
  ["getLanguage", 10],
];
const idempotent = new Set<Op>(["listGreetings", "getMe", "getLanguage"]);

export interface TrafficOptions {
  clients: GatewayClients[];
  users: SoakUser[];
  durationMs: number;
  /** Calls started per second. */
  rate: number;
  /** Whether a failure between these times is excused: no replica could have served it (the database was down). */
  excused(startMs: number, endMs: number): boolean;
}

export interface TrafficTally {
  calls: number;
  failed: number;
  /** Calls sent to the other gateway: any whose connection was refused, idempotent ones that met `unavailable` or a reset. */
  movedToOtherGateway: number;
  idempotentFailedExcused: number;
  /** Idempotent calls that failed while a replica that could serve them was up. */
  idempotentFailedUnexcused: number;
  byOp: Record<string, { calls: number; failed: number }>;
  /** Failure reasons, `op: code message` → count. */
  reasons: Map<string, number>;
  /** Greetings answered in English because the lang service did not answer, by reason → count. */
  languageFallbacks: Map<string, number>;
  signedUp: SoakUser[];
}

const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)] as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pickOp(): Op {
  let r = Math.random() * mix.reduce((sum, [, weight]) => sum + weight, 0);
  for (const [op, weight] of mix) {
    r -= weight;
    if (r < 0) return op;
  }
  return "getMe";
}

async function runOp(op: Op, clients: GatewayClients, users: SoakUser[], tally: TrafficTally): Promise<void> {
  const user = pick(users);
  const auth = callOptions(user.token);
  switch (op) {
    case "signUp": {
      const created = await signUp(clients);
      tally.signedUp.push(created);
      users.push(created);
      return;
    }
    case "greet": {
      const name = greetingName();
      const res = await clients.greeter.greet({ name }, auth);
      user.greeted.push(name);
      if (res.languageFallback) {
        const reason = res.languageFallbackReason;
        tally.languageFallbacks.set(reason, (tally.languageFallbacks.get(reason) ?? 0) + 1);
      }
      return;
    }
    case "listGreetings":
      await clients.greeter.listGreetings({ pageSize: 20 }, auth);
      return;
    case "greetStream": {
      let received = 0;
      for await (const _ of clients.greeter.greetStream({ name: "stream", count: 3, intervalMs: 20 }, auth)) received++;
      if (received !== 3) throw new ConnectError(`stream ended after ${received} of 3 greetings`, Code.DataLoss);
      return;
    }
    case "getMe":
      await clients.auth.getMe({}, auth);
      return;
    case "getLanguage":
      await clients.lang.getLanguage({}, auth);
  }
}

/** Drives the mix at `rate` calls per second for `durationMs` and counts what happened. */
export async function runTraffic(options: TrafficOptions): Promise<TrafficTally> {
  const tally: TrafficTally = {
    calls: 0,
    failed: 0,
    movedToOtherGateway: 0,
    idempotentFailedExcused: 0,
    idempotentFailedUnexcused: 0,
    byOp: {},
    reasons: new Map(),
    languageFallbacks: new Map(),
    signedUp: [],
  };
  const inFlight = new Set<Promise<void>>();
  const one = async (op: Op) => {
    tally.byOp[op] ??= { calls: 0, failed: 0 };
    const byOp = tally.byOp[op];
    tally.calls++;
    byOp.calls++;
    const gateway = Math.floor(Math.random() * options.clients.length);
    const start = Date.now();
    try {
      try {
        await runOp(op, options.clients[gateway]!, options.users, tally);
      } catch (error) {
        // A refused connection sent nothing: any call goes to the other gateway. Otherwise only an
        // idempotent call that met `unavailable` does; nothing else is sent twice.
        const e = ConnectError.from(error);
        const neverSent = e.code === Code.Unavailable && /ECONNREFUSED/.test(e.rawMessage);
        // A gateway killed mid-call resets its connections: connect-node says `aborted` (ECONNRESET).
        const lost = e.code === Code.Unavailable || (e.code === Code.Aborted && /ECONNRESET/.test(e.rawMessage));
        if (!neverSent && !(idempotent.has(op) && lost)) throw error;
        tally.movedToOtherGateway++;
        await runOp(op, options.clients[(gateway + 1) % options.clients.length]!, options.users, tally);
      }
    } catch (error) {
      const e = ConnectError.from(error);
      tally.failed++;
      byOp.failed++;
      const reason = `${op}: ${Code[e.code]} ${e.rawMessage.slice(0, 120)}`;
      tally.reasons.set(reason, (tally.reasons.get(reason) ?? 0) + 1);
      if (idempotent.has(op)) {
        if (options.excused(start, Date.now())) tally.idempotentFailedExcused++;
        else tally.idempotentFailedUnexcused++;
      }
    }
  };
  const interval = 1000 / options.rate;
  const end = Date.now() + options.durationMs;
  for (let next = Date.now(); next < end; next += interval) {
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    // Bounded: a stalled platform slows the soak instead of piling up calls.
    if (inFlight.size >= 64) continue;
    const call = one(pickOp()).finally(() => inFlight.delete(call));
    inFlight.add(call);
  }
  await Promise.all(inFlight);
  return tally;
}
