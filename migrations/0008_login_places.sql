-- Login throttling slows guesses down rather than locking accounts (issue 9):
-- failures count per account and address pair, and the places an account has
-- signed in from keep working while guesses from elsewhere are slowed.

-- The places (account and address pairs) each account signed in from, keyed
-- by a keyed hash of the pair, so that no address or e-mail is stored in
-- clear; the account's own hash lets its stale places be dropped.
CREATE TABLE login_places (
    pair_hash    bytea PRIMARY KEY,
    account_hash bytea NOT NULL,
    last_at      timestamptz NOT NULL
);
CREATE INDEX login_places_account ON login_places (account_hash, last_at);

-- When the holder was last told by e-mail of failed sign-ins on their
-- account: once per throttling window at most.
ALTER TABLE staff ADD COLUMN login_alert_at timestamptz;
