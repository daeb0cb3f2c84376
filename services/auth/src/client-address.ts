import type { HandlerContext } from "@connectrpc/connect";
import { callerKey, GATEWAY_SERVICE } from "@portico/kit";

/**
 * The header in which the gateway hands every backend the client address it decided once (trusted
 * proxies, `x-forwarded-for` walked from the right): `clientAddressHeader` of the gateway's
 * forward-headers.ts. The gateway drops every client-sent copy.
 */
export const clientAddressHeader = "x-portico-client-address";

/**
 * The client's IP address as the gateway decided it, believed only from the gateway itself: the
 * `cip` of the user's assertion the gateway signed, or, for a call without a user, the header next
 * to the gateway's own service token. `x-forwarded-for` is never read (its left part is whatever
 * the client wrote), and neither is the header from anyone else (another service, a direct call):
 * those calls share the bucket "direct".
 */
export function clientAddress(ctx: Pick<HandlerContext, "values" | "requestHeader">): string {
  const caller = ctx.values.get(callerKey);
  const fromGateway = caller.chain.length === 1 && caller.chain[0] === GATEWAY_SERVICE;
  if (!fromGateway) return "direct";
  const address = caller.user !== undefined ? caller.user.clientAddress : ctx.requestHeader.get(clientAddressHeader)?.trim();
  return address && address.length <= 64 && !address.includes(",") ? address.toLowerCase() : "direct";
}
