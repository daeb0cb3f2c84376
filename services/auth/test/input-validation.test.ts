import { Code, type ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../src/error-details.js";
import { codeOf, errorOf, identityOf, STRONG_PASSWORD, signUp, storedState, uniqueEmail, useTestAuth } from "./test-auth.js";

const t = useTestAuth("input_validation");

function violations(error: ConnectError) {
  return error
    .findDetails(BadRequestSchema)
    .flatMap((d) => (d as unknown as { fieldViolations: { field: string; description: string }[] }).fieldViolations)
    .map(({ field, description }) => ({ field, description }));
}

/** Runs `call`, expects `code`, and checks the stored state did not change. */
async function refused(call: () => Promise<unknown>, code: Code): Promise<ConnectError> {
  const before = await storedState(t.db);
  const error = await errorOf(call());
  expect(error.code, error.message).toBe(code);
  expect(await storedState(t.db)).toEqual(before);
  return error;
}

describe("emails", () => {
  const bad = [
    "",
    "   ",
    `${"a".repeat(10 * 1024)}@example.com`,
    "no-at-sign",
    "a@b",
    "@example.com",
    "a@",
    "a@@example.com",
    "a@b@example.com",
    "a b@example.com",
    "a@exa mple.com",
    ".a@example.com",
    "a..b@example.com",
    "a@-example.com",
    "a@example..com",
    "zero\u200bwidth@example.com",
    "bidi\u202e@example.com",
    "tab\t@example.com",
    "nul\u0000@example.com",
    "' OR '1'='1",
    "x'; drop table users; --@example.com",
  ];

  it("empty, 10 KiB, malformed and control-character emails: invalid_argument naming the email field", async () => {
    for (const email of bad) {
      const error = await refused(
        () => t.client.signUp({ email, password: STRONG_PASSWORD, displayName: "" }),
        Code.InvalidArgument,
      );
      expect(violations(error).map((v) => v.field)).toEqual(["email"]);
      await refused(() => t.client.login({ email, password: STRONG_PASSWORD }), Code.InvalidArgument);
    }
  });

  it("unicode emails are normalised: case, NFC and the IDN domain make one account", async () => {
    const local = `ünïcödé${Date.now()}`;
    const { user } = await t.client.signUp({
      email: `${local.toUpperCase()}@Bücher.Example`,
      password: STRONG_PASSWORD,
      displayName: "",
    });
    expect(user?.email).toBe(`${local}@xn--bcher-kva.example`);
    const decomposed = `${local.normalize("NFD")}@BU\u0308CHER.example`;
    expect((await t.client.login({ email: decomposed, password: STRONG_PASSWORD })).user?.id).toBe(user?.id);
    expect(
      await codeOf(t.client.signUp({ email: `${local}@xn--bcher-kva.example`, password: STRONG_PASSWORD, displayName: "" })),
    ).toBe(Code.AlreadyExists);
  });

  it("two concurrent sign-ups with one email: exactly one succeeds, the others get already_exists", async () => {
    const email = uniqueEmail("race");
    const variants = [email, email.toUpperCase(), ` ${email} `, email, email.replace("@", "@").toUpperCase()];
    const results = await Promise.all(
      variants.map((e) => codeOf(t.client.signUp({ email: e, password: STRONG_PASSWORD, displayName: "" }))),
    );
    expect(results.filter((r) => r === "ok")).toHaveLength(1);
    expect(results.filter((r) => r === Code.AlreadyExists)).toHaveLength(variants.length - 1);
    const { rows } = await t.db.query<{ n: number }>("select count(*)::int as n from users where email = $1", [
      email.toLowerCase(),
    ]);
    expect(rows[0]?.n).toBe(1);
  });
});

describe("passwords", () => {
  it("a 1 MiB password is refused before hashing, in SignUp, Login and ChangePassword", async () => {
    const huge = "p".repeat(1024 * 1024);
    const error = await refused(
      () => t.client.signUp({ email: uniqueEmail(), password: huge, displayName: "" }),
      Code.InvalidArgument,
    );
    expect(violations(error)).toEqual([{ field: "password", description: "must be at most 1024 bytes" }]);
    const { email, user, sessionId } = await signUp(t);
    await refused(() => t.client.login({ email, password: huge }), Code.InvalidArgument);
    await refused(
      () => t.as(identityOf(user, sessionId)).changePassword({ currentPassword: STRONG_PASSWORD, newPassword: huge }),
      Code.InvalidArgument,
    );
    // The limit is in bytes: 1024 bytes pass, 1025 do not (é is two bytes).
    const exact = `${"é".repeat(510)}abcd`;
    expect(await codeOf(t.client.signUp({ email: uniqueEmail(), password: exact, displayName: "" }))).toBe("ok");
    await refused(() => t.client.signUp({ email: uniqueEmail(), password: `${exact}z`, displayName: "" }), Code.InvalidArgument);
  });

  it("a weak password is refused with a field violation that says why", async () => {
    const email = uniqueEmail("weakling");
    const cases: [string, RegExp][] = [
      ["", /must not be empty/],
      ["short pass", /at least 12 characters \(has 10\)/],
      ["aaaaaaaaaaaaaaaa", /too few different characters/],
      ["Password1234", /most common passwords/],
      [`${email.split("@")[0]}!!`, /must not contain your email/],
    ];
    for (const [password, reason] of cases) {
      const error = await refused(() => t.client.signUp({ email, password, displayName: "" }), Code.InvalidArgument);
      const found = violations(error);
      expect(found).toHaveLength(1);
      expect(found[0]?.field).toBe("password");
      expect(found[0]?.description).toMatch(reason);
    }
  });

  it("reports every bad field at once", async () => {
    const error = await refused(
      () => t.client.signUp({ email: "nope", password: "short", displayName: "x".repeat(101) }),
      Code.InvalidArgument,
    );
    expect(violations(error).map((v) => v.field)).toEqual(["email", "password", "display_name"]);
  });
});

describe("SQL metacharacters in every string field", () => {
  it("are stored and matched verbatim, or refused, and never break a query", async () => {
    const email = `o'brien--${Date.now()}%_*=1@example.com`;
    const displayName = "Robert'); DROP TABLE users;-- \\ % _ $1";
    const password = "p@ss'; drop table users; -- \" \\ $1";
    const res = await t.client.signUp({ email, password, displayName });
    expect(res.user).toMatchObject({ email, displayName });
    expect((await t.client.login({ email, password })).user?.id).toBe(res.user?.id);
    await refused(() => t.client.login({ email: "x'or'1'='1@example.com", password: "' or '1'='1 --" }), Code.Unauthenticated);
    await refused(() => t.client.login({ email, password: "' or '1'='1 --" }), Code.Unauthenticated);
    await refused(() => t.client.refresh({ refreshToken: "' or '1'='1" }), Code.Unauthenticated);
    await refused(() => t.client.logout({ refreshToken: "'; delete from sessions; --" }), Code.Unauthenticated);
    await refused(() => t.gateway.authenticate({ accessToken: "'; delete from sessions; --" }), Code.Unauthenticated);
    const { rows } = await t.db.query<{ n: number }>("select count(*)::int as n from users");
    expect(rows[0]?.n).toBeGreaterThan(1);
  });

  it("display names with control characters or over 100 characters are refused", async () => {
    for (const displayName of ["a\u0000b", "bell\u0007", "rtl\u202eoverride", "n".repeat(101)]) {
      const error = await refused(
        () => t.client.signUp({ email: uniqueEmail(), password: STRONG_PASSWORD, displayName }),
        Code.InvalidArgument,
      );
      expect(violations(error).map((v) => v.field)).toEqual(["display_name"]);
    }
  });
});

describe("sessions", () => {
  it("refresh after Logout, and Logout without anything, change nothing", async () => {
    const { tokens } = await signUp(t);
    await t.client.logout({ refreshToken: tokens.refreshToken });
    await refused(() => t.client.refresh({ refreshToken: tokens.refreshToken }), Code.Unauthenticated);
    await refused(() => t.client.logout({}), Code.Unauthenticated);
    // Logging out twice is harmless.
    expect(await codeOf(t.client.logout({ refreshToken: tokens.refreshToken }))).toBe("ok");
  });
});
