import { domainToASCII } from "node:url";

/** Longest address SMTP can carry (RFC 5321 path limit minus the angle brackets). */
export const MAX_EMAIL_LENGTH = 254;

export type EmailCheck = { ok: true; email: string } | { ok: false; reason: string };

// Controls, separators, zero-width and bidi-override characters never belong in an address.
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Z}\s]/u;
const LOCAL_PART = /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~.-]+$/u;
const DOMAIN_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Normalises an email address for storage and lookup: trimmed, Unicode NFC, lower-cased, the
 * domain in its ASCII (punycode) form. `Ünïcödé@Bücher.example` and `ünïcödé@xn--bcher-kva.example`
 * are one account. Anything that is not a plausible address is refused with the reason.
 */
export function normaliseEmail(input: string): EmailCheck {
  if (input.length > 4 * MAX_EMAIL_LENGTH) return { ok: false, reason: `must be at most ${MAX_EMAIL_LENGTH} characters` };
  const value = input.trim().normalize("NFC");
  if (value === "") return { ok: false, reason: "must not be empty" };
  if (FORBIDDEN.test(value)) return { ok: false, reason: "must not contain spaces or control characters" };
  const at = value.lastIndexOf("@");
  if (at <= 0 || at === value.length - 1 || value.indexOf("@") !== at) {
    return { ok: false, reason: "must look like name@example.com" };
  }
  const local = value.slice(0, at).toLowerCase();
  if (local.length > 64 || !LOCAL_PART.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) {
    return { ok: false, reason: "has an invalid part before the @" };
  }
  const domain = domainToASCII(value.slice(at + 1).toLowerCase());
  const labels = domain.split(".");
  if (domain === "" || labels.length < 2 || !labels.every((label) => DOMAIN_LABEL.test(label))) {
    return { ok: false, reason: "has an invalid domain after the @" };
  }
  const email = `${local}@${domain}`;
  if (email.length > MAX_EMAIL_LENGTH) return { ok: false, reason: `must be at most ${MAX_EMAIL_LENGTH} characters` };
  return { ok: true, email };
}
