-- Fair allocation (issue 12): a service can give its seats by a published
-- draw over a request window instead of first come, first served; freed
-- seats of such a service go to the waiting list in drawn order.

ALTER TABLE services
    ADD COLUMN allocation_mode text NOT NULL DEFAULT 'instant'
        CHECK (allocation_mode IN ('instant', 'draw'));

-- A request window: requests between opens_at and closes_at for the slots
-- starting in [period_start, period_end) (the local days first_day..last_day
-- in the office's zone). The seed is drawn at the opening; only its SHA-256
-- is public until the draw.
CREATE TABLE draw_windows (
    id             bigserial PRIMARY KEY,
    office_id      text NOT NULL,
    service_id     text NOT NULL,
    opens_at       timestamptz NOT NULL,
    closes_at      timestamptz NOT NULL,
    first_day      date NOT NULL,
    last_day       date NOT NULL,
    period_start   timestamptz NOT NULL,
    period_end     timestamptz NOT NULL,
    seed           bytea NOT NULL CHECK (length(seed) = 32),
    seed_sha256    text NOT NULL CHECK (seed_sha256 ~ '^[0-9a-f]{64}$'),
    state          text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'drawn')),
    -- Published at the close, before the draw runs.
    entries_sha256 text CHECK (entries_sha256 ~ '^[0-9a-f]{64}$'),
    closed_at      timestamptz,
    drawn_at       timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    CHECK (opens_at < closes_at AND closes_at <= period_start AND period_start < period_end),
    CHECK (first_day <= last_day),
    CHECK ((state = 'open') = (entries_sha256 IS NULL)),
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id) ON DELETE CASCADE
);
CREATE INDEX draw_windows_service ON draw_windows (office_id, service_id, period_start);
CREATE INDEX draw_windows_to_close ON draw_windows (closes_at) WHERE state <> 'drawn';

-- One request of a citizen (or of staff for a citizen) in a window, and
-- after the draw its place and outcome. The id is random (128 bits, hex),
-- published, and shown on the citizen's receipt; it says nothing about them.
CREATE TABLE draw_entries (
    id               text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    window_id        bigint NOT NULL REFERENCES draw_windows (id) ON DELETE CASCADE,
    -- Keyed hashes: of the normalised document number (when the service
    -- asks for one) and of each verified contact. Never the values in clear
    -- for matching; the contacts themselves are kept to send the offer.
    document_hash    bytea,
    phone_hash       bytea,
    email_hash       bytea,
    citizen_name     text NOT NULL CHECK (length(citizen_name) BETWEEN 1 AND 200),
    phone            text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email            text CHECK (length(email) <= 254),
    language         text NOT NULL CHECK (language IN ('ar', 'fr', 'en')),
    document_number  text CHECK (document_number ~ '^[A-Z0-9]{4,30}$'),
    days             date[] NOT NULL CHECK (cardinality(days) >= 1),
    parts            text[] NOT NULL CHECK (cardinality(parts) >= 1
                        AND parts <@ ARRAY['morning', 'afternoon']),
    -- Position in the drawn order (0 first), set by the draw.
    position         integer CHECK (position >= 0),
    outcome          text NOT NULL DEFAULT 'waiting' CHECK (outcome IN
                        ('waiting', 'offered', 'confirmed', 'declined', 'expired', 'withdrawn')),
    -- The open or last offer: a held booking whose hold is the offer's expiry.
    booking_id       bigint REFERENCES bookings (id),
    offer_expires_at timestamptz,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL,
    CHECK (phone IS NOT NULL OR email IS NOT NULL),
    CHECK (outcome <> 'offered' OR (booking_id IS NOT NULL AND offer_expires_at IS NOT NULL))
);
CREATE INDEX draw_entries_window ON draw_entries (window_id, position);
-- One request per identity per window: per document, per phone, per address.
CREATE UNIQUE INDEX draw_entries_one_per_document ON draw_entries (window_id, document_hash)
    WHERE document_hash IS NOT NULL;
CREATE UNIQUE INDEX draw_entries_one_per_phone ON draw_entries (window_id, phone_hash)
    WHERE phone_hash IS NOT NULL;
CREATE UNIQUE INDEX draw_entries_one_per_email ON draw_entries (window_id, email_hash)
    WHERE email_hash IS NOT NULL;
-- One open offer per identity, whatever the window.
CREATE UNIQUE INDEX draw_entries_one_offer_per_document ON draw_entries (document_hash)
    WHERE outcome = 'offered' AND document_hash IS NOT NULL;
CREATE UNIQUE INDEX draw_entries_one_offer_per_phone ON draw_entries (phone_hash)
    WHERE outcome = 'offered' AND phone_hash IS NOT NULL;
CREATE UNIQUE INDEX draw_entries_one_offer_per_email ON draw_entries (email_hash)
    WHERE outcome = 'offered' AND email_hash IS NOT NULL;

-- Entries cannot be added, nor their wishes changed, once the window is
-- closed: the published list is the whole input of the draw.
CREATE FUNCTION refuse_late_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w draw_windows;
BEGIN
    SELECT * INTO w FROM draw_windows WHERE id = NEW.window_id FOR SHARE;
    IF w.state <> 'open' OR NEW.created_at < w.opens_at OR NEW.created_at >= w.closes_at THEN
        RAISE EXCEPTION 'the request window is not open'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'draw_window_closed';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER draw_entries_window_open BEFORE INSERT ON draw_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_late_entry();

CREATE FUNCTION refuse_entry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.window_id <> OLD.window_id OR NEW.days <> OLD.days
       OR NEW.parts <> OLD.parts OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'a draw entry''s request does not change'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'draw_entry_fixed';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER draw_entries_fixed BEFORE UPDATE ON draw_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_entry_change();

-- A seat of a draw service is never taken directly: only an offer of the
-- draw or of its waiting list (created_by = 'draw') books one, and no
-- booking moves onto or between its slots. Whatever statement tries.
CREATE FUNCTION refuse_direct_draw_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'INSERT' AND NEW.created_by = 'draw')
       OR (TG_OP = 'UPDATE' AND NEW.slot_id = OLD.slot_id) THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM services
               WHERE office_id = NEW.office_id AND id = NEW.service_id
                 AND allocation_mode = 'draw') THEN
        RAISE EXCEPTION 'seats of this service are given by a draw'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'draw_only';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER bookings_draw_only BEFORE INSERT OR UPDATE OF slot_id ON bookings
    FOR EACH ROW EXECUTE FUNCTION refuse_direct_draw_booking();

-- The offer message.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer'));
