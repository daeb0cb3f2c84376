import { type DescMethod, getOption, hasOption } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Access, default_policy, type Policy, policy as policyOption } from "@portico/gen/portico/gateway/v1/options_pb.js";

export type AccessLevel = "public" | "authenticated" | "internal";

/** A token-bucket rate: `count` calls per `periodSeconds`, written "60/m". */
export interface Rate {
  count: number;
  periodSeconds: number;
  text: string;
}

/** The policy of one method after the service default and the method option are merged. */
export interface EffectivePolicy {
  access: AccessLevel;
  permissions: readonly string[];
  /** For INTERNAL methods: the services allowed to call (deny by default: none listed, none allowed). */
  callers: readonly string[];
  perUser?: Rate;
  perIp?: Rate;
  /** Unset: the gateway's configured default applies. */
  timeoutMs?: number;
  /** Unset: the gateway's configured default applies. */
  maxRequestBytes?: number;
  /** `NO_SIDE_EFFECTS` or `IDEMPOTENT`: may be retried, and called with Connect GET when NO_SIDE_EFFECTS. */
  idempotent: boolean;
  noSideEffects: boolean;
}

const periods: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** Parses "60/m" (unit s, m or h); throws a message naming the bad value. */
export function parseRate(text: string, where: string): Rate {
  const match = /^\s*(\d+)\s*\/\s*([smh])\s*$/.exec(text);
  const count = match ? Number(match[1]) : 0;
  if (!match || count < 1) {
    throw new Error(
      `${where}: rate "${text}" is not valid; write "<count>/<unit>" with count ≥ 1 and unit s, m or h (e.g. "60/m")`,
    );
  }
  return { count, periodSeconds: periods[match[2] as string] as number, text: `${count}/${match[2]}` };
}

const accessNames: Record<Access, AccessLevel | undefined> = {
  [Access.UNSPECIFIED]: undefined,
  [Access.PUBLIC]: "public",
  [Access.AUTHENTICATED]: "authenticated",
  [Access.INTERNAL]: "internal",
};

/** Merges the service's `default_policy` and the method's `policy`, field by field; unset access is AUTHENTICATED. */
export function resolvePolicy(method: DescMethod): EffectivePolicy {
  const layers: Policy[] = [];
  if (hasOption(method.parent, default_policy)) layers.push(getOption(method.parent, default_policy));
  if (hasOption(method, policyOption)) layers.push(getOption(method, policyOption));
  const where = `/${method.parent.typeName}/${method.name}`;
  const level = method.idempotency;
  const result: EffectivePolicy = {
    access: "authenticated",
    permissions: [],
    callers: [],
    idempotent: level === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS || level === MethodOptions_IdempotencyLevel.IDEMPOTENT,
    noSideEffects: level === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS,
  };
  for (const layer of layers) {
    const access = accessNames[layer.access];
    if (access) result.access = access;
    if (layer.permissions.length > 0) result.permissions = [...layer.permissions];
    if (layer.callers.length > 0) result.callers = [...layer.callers];
    if (layer.rateLimit?.perUser) result.perUser = parseRate(layer.rateLimit.perUser, where);
    if (layer.rateLimit?.perIp) result.perIp = parseRate(layer.rateLimit.perIp, where);
    if (layer.timeout) {
      result.timeoutMs = Number(layer.timeout.seconds) * 1000 + Math.floor(layer.timeout.nanos / 1e6);
    }
    if (layer.maxRequestBytes > 0) result.maxRequestBytes = layer.maxRequestBytes;
  }
  return result;
}
