import type { Database } from "@portico/kit";
import { ADMIN_PERMISSION } from "./auth-service.js";
import { normaliseEmail } from "./email-address.js";

/**
 * Adds `auth.admin` to the roles of the account with `email`, straight in the auth database: the
 * way to make the first administrator, who can then call SetUserRoles. The users trigger announces
 * the change, so the user's current access tokens are refused and the next Refresh carries the role.
 */
export async function grantAdmin(db: Database, email: string): Promise<{ userId: string; email: string; roles: string[] }> {
  const check = normaliseEmail(email);
  if (!check.ok) throw new Error(`"${email}" is not a usable email: it ${check.reason}`);
  const { rows } = await db.query<{ id: string; roles: string[] }>(
    "update users set roles = (select array_agg(distinct r order by r) from unnest(array_append(roles, $2)) r) where email = $1 returning id::text as id, roles",
    [check.email, ADMIN_PERMISSION],
  );
  const user = rows[0];
  if (!user) throw new Error(`no account with email ${check.email}: sign up first`);
  return { userId: user.id, email: check.email, roles: user.roles };
}
