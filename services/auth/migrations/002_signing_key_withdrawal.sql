-- Deleting a signing key (by any means: plain SQL after a key compromise, a script) withdraws it:
-- the row it leaves in the revocation log makes every auth replica drop the key within a poll and
-- tell the gateways, so no access token it signed is accepted any more, cached or not.
alter table revocations add column kid text;

create function announce_key_withdrawal() returns trigger language plpgsql as $$ begin insert into revocations (kid, reason) values (old.kid, 'signing key deleted'); return null; end $$;

create trigger signing_keys_withdraw_on_delete after delete on signing_keys for each row execute function announce_key_withdrawal();
