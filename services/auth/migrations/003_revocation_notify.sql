-- Every row the revocation log gains (this replica's writes, another's, a script's, the triggers'
-- above) wakes every auth replica at its commit: NOTIFY on portico_revocations, once per statement
-- (and once per transaction: PostgreSQL folds equal notifications), so each replica reads the log
-- at once instead of on its next poll (src/revocation-set.ts).
create function notify_revocation() returns trigger language plpgsql as $$ begin perform pg_notify('portico_revocations', ''); return null; end $$;

create trigger revocations_notify after insert on revocations for each statement execute function notify_revocation();
