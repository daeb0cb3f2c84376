import { isIP, type Socket } from "node:net";
import { TokenBucket } from "./h2/index.js";

/*
 * Which new connections the public port takes, per client address (L4: the socket's peer, never a
 * header). The HTTP/2 limits close a connection that floods (GOAWAY ENHANCE_YOUR_CALM), but a
 * closed attacker connects again at once, thousands of times a minute, and every new connection
 * costs an accept, a preface and SETTINGS before it is caught again. So an address whose
 * connections keep being closed for abuse spends a budget, as Envoy's overload manager and L4
 * per-IP limits do; once it is spent, the address's new connections are held unread (never
 * parsed, never answered) until they are dropped, which also stalls the attacker rather than
 * letting it spin. Other addresses are not touched. Addresses of trusted proxies are exempt: every
 * client behind them shares their address.
 */

/** The budgets a config reload may change (`reconfigure`). */
export type AddressAdmissionLimits = Pick<AddressAdmissionOptions, "abuseBudget" | "maxConnectionsPerAddress" | "holdMs">;

export interface AddressAdmissionOptions {
  /**
   * Connections of one address the gateway may close for abuse at once (an HTTP/2 limit breached:
   * GOAWAY ENHANCE_YOUR_CALM, or a socket that stopped draining), refilled at `perSecond`.
   */
  abuseBudget: { burst: number; perSecond: number };
  /** Connections one address may have open at once; more are closed at once. */
  maxConnectionsPerAddress: number;
  /** How long a connection of an address over its abuse budget is held unread before it is dropped (ms). */
  holdMs: number;
  /** Connections held unread at once, over all addresses; more are closed at once. */
  maxHeld?: number;
  /** Addresses exempt from the budgets (trusted proxies, whose connections carry many clients). */
  exempt?: (address: string) => boolean;
}

export interface AddressAdmission {
  /**
   * Whether to serve a new connection. False: the connection is already handled (held unread, or
   * closed); the caller must not read it. `canHold` false (a TLS socket, whose handshake reads on
   * its own): a connection that would be held is closed instead.
   */
  admit(socket: Socket, canHold?: boolean): boolean;
  /** A connection of `address` was closed for abuse: it spends the address's abuse budget. */
  strike(address: string): void;
  /**
   * New budgets (a config reload), for connections accepted from now on; what each address has
   * open and held is kept. An address's spent abuse budget stays spent until it refills a token;
   * its next strike then counts against the new budget.
   */
  reconfigure(limits: AddressAdmissionLimits): void;
  /** Connections held unread now. */
  readonly held: number;
}

interface AddressState {
  open: number;
  abuse: TokenBucket | undefined;
  /** The budget `abuse` was made with. */
  budget: AddressAdmissionOptions["abuseBudget"] | undefined;
}

/** Addresses remembered at most; beyond it the oldest without open connections are forgotten. */
const maxAddresses = 100_000;

/** IPv4 as it is; IPv4-mapped IPv6 as IPv4; other IPv6 by its /64 (one host usually owns a whole /64). */
export function addressKey(address: string): string {
  const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  if (isIP(plain) !== 6) return plain;
  const [head = "", tail] = plain.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/** Throws, naming the field, when an option is not a positive number. */
export function checkAddressAdmissionOptions(options: AddressAdmissionLimits & { maxHeld?: number }): void {
  const positive = (name: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      throw new Error(`createAddressAdmission: ${name} must be a positive number, got ${String(value)}`);
    }
  };
  positive("abuseBudget.burst", options.abuseBudget.burst);
  positive("abuseBudget.perSecond", options.abuseBudget.perSecond);
  positive("maxConnectionsPerAddress", options.maxConnectionsPerAddress);
  positive("holdMs", options.holdMs);
  positive("maxHeld", options.maxHeld);
}

export function createAddressAdmission(given: AddressAdmissionOptions): AddressAdmission {
  checkAddressAdmissionOptions(given);
  let options = given;
  const maxHeld = options.maxHeld ?? 1024;
  const states = new Map<string, AddressState>();
  let held = 0;

  const stateOf = (key: string): AddressState => {
    let state = states.get(key);
    if (state === undefined) {
      if (states.size >= maxAddresses) {
        for (const [old, s] of states) {
          if (s.open === 0) states.delete(old);
          if (states.size < maxAddresses * 0.9) break;
        }
      }
      state = { open: 0, abuse: undefined, budget: undefined };
      states.set(key, state);
    }
    return state;
  };

  /** Held unread (the peer's writes fill its socket buffers and it stalls), then dropped. */
  const hold = (socket: Socket, canHold: boolean) => {
    if (!canHold || held >= maxHeld) {
      socket.destroy();
      return;
    }
    held++;
    socket.pause();
    const timer = setTimeout(() => socket.destroy(), options.holdMs);
    timer.unref();
    socket.on("error", () => {});
    socket.once("close", () => {
      held--;
      clearTimeout(timer);
    });
  };

  return {
    admit(socket, canHold = true) {
      const address = socket.remoteAddress ?? "";
      if (options.exempt?.(address) === true) return true;
      const key = addressKey(address);
      const state = stateOf(key);
      if (state.open >= options.maxConnectionsPerAddress) {
        socket.destroy();
        return false;
      }
      // An empty bucket refuses without taking: only a closed abusive connection spends it.
      if (state.abuse !== undefined && !state.abuse.has()) {
        hold(socket, canHold);
        return false;
      }
      state.open++;
      // `on`, not `once`: a socket closes once, and `once` would keep a wrapper per connection.
      socket.on("close", () => {
        state.open--;
      });
      return true;
    },
    strike(address) {
      if (options.exempt?.(address) === true) return;
      const state = stateOf(addressKey(address));
      const budget = options.abuseBudget;
      const changed = state.budget?.burst !== budget.burst || state.budget?.perSecond !== budget.perSecond;
      if (state.abuse === undefined || (changed && state.abuse.has())) {
        state.abuse = new TokenBucket(budget.burst, budget.perSecond);
        state.budget = budget;
      }
      state.abuse.take();
    },
    reconfigure(limits) {
      checkAddressAdmissionOptions(limits);
      options = { ...options, ...limits };
    },
    get held() {
      return held;
    },
  };
}
