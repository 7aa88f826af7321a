--! Previous: sha1:110ecd6ab2fda4ee36a1990122ae6861f91f27ea
--! Hash: sha1:5fa02d68f9d383535b4b4e970c1f7625bb23d746
--! Message: trusted devices: a login's device token exempts its owner from the per-account lockout

-- OWASP's "device cookies": a client that signed in to an account before
-- presents the device token it was given then, and its login attempts are
-- judged as the owner's (its own failure budget, first in the password-check
-- queue), not as a stranger's (the per-account lockout an attacker can
-- trigger from many addresses). A row per (device, account): a browser keeps
-- one device token, trusted for every account that signed in on it. The
-- token itself is never stored, only its SHA-256, like a session's.
create table app_private.trusted_devices (
  token_hash bytea not null,
  user_id bigint not null references app_public.users on delete cascade,
  created_at timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  primary key (token_hash, user_id)
);
-- The login's lookup is the primary key; this one serves
-- the cap on devices per account (queries/users.ts keeps the newest 20).
create index trusted_devices_user_id_last_used_at_idx on app_private.trusted_devices (user_id, last_used_at desc);
comment on table app_private.trusted_devices is
  'Device tokens (SHA-256) issued at successful logins and sign-ups; a login presenting one for its account is trusted (README, "Limits and failure answers"). At most 20 per account; deleted with the account.';
