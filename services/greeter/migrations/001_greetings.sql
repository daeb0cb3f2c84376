create table greetings (
  id uuid primary key,
  user_id text not null,
  message text not null,
  created_at timestamptz not null default now()
);

create index greetings_user_created on greetings (user_id, created_at desc, id desc);
