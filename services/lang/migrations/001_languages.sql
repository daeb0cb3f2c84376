create table user_languages (
  user_id text primary key,
  language text not null,
  updated_at timestamptz not null default now()
);
