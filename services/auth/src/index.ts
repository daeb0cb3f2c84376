export type { AccessClaims } from "./access-tokens.js";
export { ADMIN_PERMISSION } from "./auth-service.js";
export { normaliseEmail } from "./email-address.js";
export type { LoginLimits } from "./login-limiter.js";
export { MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH } from "./password-policy.js";
export { REFRESH_COOKIE } from "./refresh-cookie.js";
export { type AuthOptions, type AuthServer, startAuth } from "./start-auth.js";
