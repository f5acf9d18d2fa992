-- Office side: staff accounts, their offices, sessions, API tokens, login
-- throttling, and the secret calendar feed of each office.  Every secret
-- (password, session id, API token, feed secret) is stored only hashed:
-- passwords with argon2id, the high-entropy random values with a keyed
-- HMAC-SHA256 so that they can be looked up by their hash.

CREATE TABLE staff (
    id            bigserial PRIMARY KEY,
    -- Lower-cased on the way in, so that logins ignore case.
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    role          text NOT NULL CHECK (role IN ('admin', 'manager', 'agent')),
    password_hash text NOT NULL,
    -- Accounts made by the demo seed with published passwords; refused at
    -- login outside dev and test.
    demo          boolean NOT NULL DEFAULT false,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

-- The offices a manager or agent works for; admins need no row (every office).
CREATE TABLE staff_offices (
    staff_id  bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    office_id text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    PRIMARY KEY (staff_id, office_id)
);
CREATE INDEX staff_offices_office ON staff_offices (office_id);

CREATE TABLE staff_sessions (
    id_hash      bytea PRIMARY KEY,
    staff_id     bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    -- Idle expiry, pushed forward on use but never past created_at + the
    -- absolute lifetime (the domain computes both).
    expires_at   timestamptz NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

CREATE TABLE staff_api_tokens (
    id           bigserial PRIMARY KEY,
    staff_id     bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    label        text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX staff_api_tokens_staff ON staff_api_tokens (staff_id);

-- Failed logins, keyed by a hash of "account:<email>" or "ip:<address>" so
-- that the table holds no address or e-mail in clear.
CREATE TABLE login_failures (
    key_hash bytea NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key_hash, at);

-- One secret ICS feed per office; rotating it revokes the old URL.
CREATE TABLE office_feeds (
    office_id   text PRIMARY KEY REFERENCES offices (id) ON DELETE CASCADE,
    secret_hash bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    created_by  bigint REFERENCES staff (id) ON DELETE SET NULL
);
