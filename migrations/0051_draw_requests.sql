-- A citizen's request in a draw proves its contact with the same code step
-- as a held booking (issue 12): the entry waits, unproved, until the code
-- comes back or its time runs out; only proved entries enter the draw.
-- Its code, and later its "not served" message, are outbox rows of the
-- entry (an outbox row belongs to a booking or to an entry, never both).

ALTER TABLE draw_entries ADD COLUMN verified_at timestamptz;
ALTER TABLE draw_entries ADD COLUMN pending_until timestamptz;
-- The receipt's link (withdraw): its keyed hash only.
ALTER TABLE draw_entries ADD COLUMN token_hash bytea;
-- Entries written before this migration were proved before they were written.
UPDATE draw_entries SET verified_at = created_at;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_proved_or_pending
    CHECK (verified_at IS NOT NULL OR pending_until IS NOT NULL);
-- The retention job anonymises requests as it does bookings: the id, the
-- wishes, the place and the outcome stay (the public record needs them).
ALTER TABLE draw_entries ADD COLUMN anonymised_at timestamptz;
ALTER TABLE draw_entries DROP CONSTRAINT draw_entries_check;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_contact
    CHECK (anonymised_at IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL);

-- The languages of the reach issue too (Spanish, Tamazight), as its
-- migration allows them for bookings and messages.
ALTER TABLE draw_entries DROP CONSTRAINT draw_entries_language_check;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_language_check
    CHECK (language IN ('ar', 'fr', 'en', 'es', 'zgh'));

-- 'lapsed': a request whose code never came back; it holds no identity.
ALTER TABLE draw_entries DROP CONSTRAINT draw_entries_outcome_check;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_outcome_check CHECK (outcome IN
    ('waiting', 'offered', 'confirmed', 'declined', 'expired', 'withdrawn', 'lapsed'));

-- One request per identity per window, not counting lapsed ones (a stranger
-- who typed someone's number must not lock them out past the code's time).
DROP INDEX draw_entries_one_per_document;
DROP INDEX draw_entries_one_per_phone;
DROP INDEX draw_entries_one_per_email;
CREATE UNIQUE INDEX draw_entries_one_per_document ON draw_entries (window_id, document_hash)
    WHERE document_hash IS NOT NULL AND outcome <> 'lapsed';
CREATE UNIQUE INDEX draw_entries_one_per_phone ON draw_entries (window_id, phone_hash)
    WHERE phone_hash IS NOT NULL AND outcome <> 'lapsed';
CREATE UNIQUE INDEX draw_entries_one_per_email ON draw_entries (window_id, email_hash)
    WHERE email_hash IS NOT NULL AND outcome <> 'lapsed';

-- The receipt's link carried by a request's messages ("not served"): one
-- token per message, like a booking's manage links; keyed hashes only.
CREATE TABLE draw_entry_tokens (
    token_hash bytea PRIMARY KEY,
    entry_id   text NOT NULL REFERENCES draw_entries (id) ON DELETE CASCADE,
    outbox_id  bigint,
    created_at timestamptz NOT NULL
);
CREATE INDEX draw_entry_tokens_entry ON draw_entry_tokens (entry_id);

-- A contact check belongs to a held booking or to a pending entry.
ALTER TABLE contact_checks ADD COLUMN draw_entry_id text UNIQUE
    REFERENCES draw_entries (id) ON DELETE CASCADE;
ALTER TABLE contact_checks ADD CONSTRAINT contact_checks_one_owner
    CHECK (num_nonnulls(booking_id, draw_entry_id) <= 1);

ALTER TABLE outbox ALTER COLUMN booking_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN draw_entry_id text REFERENCES draw_entries (id);
ALTER TABLE outbox ADD CONSTRAINT outbox_one_subject
    CHECK (num_nonnulls(booking_id, draw_entry_id) = 1);
CREATE INDEX outbox_draw_entry ON outbox (draw_entry_id) WHERE draw_entry_id IS NOT NULL;

-- When the entries the draw did not serve were told so (once per window).
ALTER TABLE draw_windows ADD COLUMN waiting_told_at timestamptz;

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer', 'draw_not_served'));
