/**
 * The header in which the gateway hands every backend the client address it decided once (trusted
 * proxies, `x-forwarded-for` walked from the right): `clientAddressHeader` of the gateway's
 * forward-headers.ts. The gateway drops every client-sent copy.
 */
export const clientAddressHeader = "x-portico-client-address";

/**
 * The client's IP address as the gateway decided it. `x-forwarded-for` is never read: its left
 * part is whatever the client wrote. Calls that did not come through a gateway share the bucket
 * "direct".
 */
export function clientAddress(headers: Headers): string {
  const address = headers.get(clientAddressHeader)?.trim();
  return address && address.length <= 64 && !address.includes(",") ? address.toLowerCase() : "direct";
}
