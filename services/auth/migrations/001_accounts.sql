-- Accounts, sessions, refresh tokens, signing keys and the revocation log of the auth service.
-- Emails are stored normalised (see src/email-address.ts); the unique index settles concurrent sign-ups.
create table users (
  id uuid primary key,
  email text not null,
  display_name text not null,
  password_hash text not null,
  tier text not null default 'free',
  roles text[] not null default '{}',
  created_at timestamptz not null default clock_timestamp(),
  password_changed_at timestamptz not null default clock_timestamp()
);

create unique index users_email_key on users (email);

-- One row per login; revoked_at ends it for good.
create table sessions (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade,
  created_at timestamptz not null default clock_timestamp(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text
);

create index sessions_user_id on sessions (user_id);

-- Refresh tokens are stored only as SHA-256 hashes; a rotated one (rotated_at set) presented again
-- revokes its session.
create table refresh_tokens (
  token_hash bytea primary key,
  session_id uuid not null references sessions (id) on delete cascade,
  created_at timestamptz not null default clock_timestamp(),
  expires_at timestamptz not null,
  rotated_at timestamptz
);

create index refresh_tokens_session_id on refresh_tokens (session_id);

-- Access-token signing keys: the newest signs; a retired one keeps verifying until its tokens expired.
create table signing_keys (
  kid text primary key,
  alg text not null,
  private_jwk jsonb not null,
  public_jwk jsonb not null,
  created_at timestamptz not null default clock_timestamp(),
  retired_at timestamptz
);

-- Append-only log every auth replica follows to keep its in-memory revocation set current.
-- A row has a session_id (that session ended) or a user_id with revoked_before (every token of
-- that user issued earlier is void).
create table revocations (
  id bigint generated always as identity primary key,
  session_id uuid,
  user_id uuid,
  revoked_before timestamptz,
  reason text not null,
  created_at timestamptz not null default clock_timestamp()
);

create index revocations_created_at on revocations (created_at);

-- Deleting a user, or changing their roles or tier by any means (RPC, script, plain SQL), voids their
-- outstanding access tokens.
create function announce_user_revocation() returns trigger language plpgsql as $$ begin insert into revocations (user_id, revoked_before, reason) values (old.id, clock_timestamp(), case when tg_op = 'DELETE' then 'user deleted' else 'roles or tier changed' end); return null; end $$;

create trigger users_revoke_on_delete after delete on users for each row execute function announce_user_revocation();

create trigger users_revoke_on_change after update of roles, tier on users for each row when (old.roles is distinct from new.roles or old.tier is distinct from new.tier) execute function announce_user_revocation();
