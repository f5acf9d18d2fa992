-- "Tell me when a mobile day is planned near me" (issue 16): a citizen
-- leaves one contact (a mobile for SMS or WhatsApp, or an e-mail address)
-- and a town, for a consulate. Only what sending takes is kept: the contact,
-- its keyed hash (one subscription per contact and consulate), the town's
-- coordinates (not its name), the language and the channel. The link of the
-- subscription's page (stop, renew) is kept as a keyed hash.
CREATE TABLE mobile_day_subscriptions (
    id            bigserial PRIMARY KEY,
    office_id     text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    channel       text NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
    contact       text CHECK (length(contact) BETWEEN 3 AND 254),
    contact_hash  bytea,
    latitude      double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision CHECK (longitude BETWEEN -180 AND 180),
    language      text NOT NULL CHECK (language IN ('ar', 'fr', 'en', 'es', 'zgh')),
    token_hash    bytea NOT NULL,
    -- Proved by a code (or a contact proved lately); until then the
    -- subscription waits for its code until expires_at.
    verified_at   timestamptz,
    -- A year after it was proved or last renewed; nothing goes after it.
    expires_at    timestamptz NOT NULL,
    stopped_at    timestamptz,
    anonymised_at timestamptz,
    created_at    timestamptz NOT NULL,
    CHECK (anonymised_at IS NOT NULL OR (contact IS NOT NULL AND contact_hash IS NOT NULL
                                         AND latitude IS NOT NULL AND longitude IS NOT NULL)),
    CHECK (anonymised_at IS NULL OR (contact IS NULL AND contact_hash IS NULL
                                     AND latitude IS NULL AND longitude IS NULL))
);
-- One standing subscription per contact and consulate: a second one proved
-- for the same contact takes the first one's place (service.mobile_alerts).
CREATE UNIQUE INDEX mobile_day_subscriptions_one_per_contact
    ON mobile_day_subscriptions (office_id, contact_hash)
    WHERE verified_at IS NOT NULL AND stopped_at IS NULL AND anonymised_at IS NULL;
-- Publishing a mobile day reads its office's standing subscriptions.
CREATE INDEX mobile_day_subscriptions_standing ON mobile_day_subscriptions (office_id, expires_at)
    WHERE verified_at IS NOT NULL AND stopped_at IS NULL AND anonymised_at IS NULL;

-- The links its messages carry: one token per message, keyed hashes only.
CREATE TABLE mobile_day_subscription_tokens (
    token_hash      bytea PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES mobile_day_subscriptions (id) ON DELETE CASCADE,
    outbox_id       bigint,
    created_at      timestamptz NOT NULL
);
CREATE INDEX mobile_day_subscription_tokens_subscription
    ON mobile_day_subscription_tokens (subscription_id);

-- A contact check belongs to a held booking, a pending draw request or a
-- subscription waiting for its code.
ALTER TABLE contact_checks ADD COLUMN subscription_id bigint UNIQUE
    REFERENCES mobile_day_subscriptions (id) ON DELETE CASCADE;
ALTER TABLE contact_checks DROP CONSTRAINT contact_checks_one_owner;
ALTER TABLE contact_checks ADD CONSTRAINT contact_checks_one_owner
    CHECK (num_nonnulls(booking_id, draw_entry_id, subscription_id) <= 1);

-- Where a mobile day is, for the distance to its subscribers (located from
-- its town, or given by the manager), how far its announcement reaches, and
-- when it was withdrawn (its slots closed; it is no longer listed).
ALTER TABLE mobile_days ADD COLUMN latitude double precision
    CHECK (latitude BETWEEN -90 AND 90);
ALTER TABLE mobile_days ADD COLUMN longitude double precision
    CHECK (longitude BETWEEN -180 AND 180);
ALTER TABLE mobile_days ADD COLUMN alert_km integer CHECK (alert_km BETWEEN 1 AND 1000);
ALTER TABLE mobile_days ADD COLUMN withdrawn_at timestamptz;

-- A subscription's messages: its code, and each announcement of a mobile
-- day, which names the day it announces.
ALTER TABLE outbox ADD COLUMN subscription_id bigint REFERENCES mobile_day_subscriptions (id);
ALTER TABLE outbox ADD COLUMN mobile_day_id bigint REFERENCES mobile_days (id);
ALTER TABLE outbox DROP CONSTRAINT outbox_one_subject;
ALTER TABLE outbox ADD CONSTRAINT outbox_one_subject
    CHECK (num_nonnulls(booking_id, draw_entry_id, subscription_id) = 1);
CREATE INDEX outbox_subscription ON outbox (subscription_id) WHERE subscription_id IS NOT NULL;

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer', 'draw_not_served', 'document_ready', 'document_uncollected', 'feedback',
    'waitlist_offer', 'mobile_day_planned'));
-- One announcement per subscriber and mobile day, whoever writes it (a
-- stand-in for a failed one points at it through fallback_of).
CREATE UNIQUE INDEX outbox_one_announcement ON outbox (subscription_id, mobile_day_id)
    WHERE kind = 'mobile_day_planned' AND fallback_of IS NULL;
