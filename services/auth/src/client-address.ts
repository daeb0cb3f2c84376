/**
 * The client's IP address as the gateway reports it: the first entry of `x-forwarded-for` (the
 * gateway drops client-sent entries unless they come from a trusted proxy). Calls that did not come
 * through a gateway share the bucket "direct".
 */
export function clientAddress(headers: Headers): string {
  const first = headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  return first && first.length <= 64 ? first.toLowerCase() : "direct";
}
