-- The waiting list of an instant service (issue 12, section 4): a citizen
-- who finds no suitable time joins the list of an office's service with the
-- days and parts of day they can come; a seat freed inside the next
-- WAITLIST_DAYS goes to the first suitable entry, in order of joining, as an
-- offer (a held booking), before it can go back on sale.
--
-- An entry of that list is a draw entry without a window: the same
-- identity hashes, contacts, wishes, code step, receipt tokens, outcomes
-- and offers, so that "one open offer per identity" (0050) holds across
-- draws and waiting lists, and one offer page answers both.

ALTER TABLE draw_entries ADD COLUMN office_id text;
ALTER TABLE draw_entries ADD COLUMN service_id text;
UPDATE draw_entries e SET office_id = w.office_id, service_id = w.service_id
FROM draw_windows w WHERE w.id = e.window_id;
ALTER TABLE draw_entries ALTER COLUMN office_id SET NOT NULL;
ALTER TABLE draw_entries ALTER COLUMN service_id SET NOT NULL;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_service
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id) ON DELETE CASCADE;
ALTER TABLE draw_entries ALTER COLUMN window_id DROP NOT NULL;

-- The order of joining: the product's clock first, then the order of the
-- inserts for entries written at the same instant.
ALTER TABLE draw_entries ADD COLUMN seq bigserial;

-- Where the phone's messages go, as the citizen chose (bookings' 0080).
ALTER TABLE draw_entries ADD COLUMN message_channel text NOT NULL DEFAULT 'sms'
    CHECK (message_channel IN ('sms', 'whatsapp', 'email'));

-- A window's entry belongs to the window's office and service, whatever the
-- statement says; an entry without a window is on the waiting list of an
-- instant service (a draw service's list is its drawn windows').
CREATE OR REPLACE FUNCTION refuse_late_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w draw_windows;
BEGIN
    IF NEW.window_id IS NULL THEN
        IF NOT EXISTS (SELECT 1 FROM services
                       WHERE office_id = NEW.office_id AND id = NEW.service_id
                         AND allocation_mode = 'instant') THEN
            RAISE EXCEPTION 'only an instant service has a waiting list of its own'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'waitlist_instant_only';
        END IF;
        RETURN NEW;
    END IF;
    SELECT * INTO w FROM draw_windows WHERE id = NEW.window_id FOR SHARE;
    IF w.state <> 'open' OR NEW.created_at < w.opens_at OR NEW.created_at >= w.closes_at THEN
        RAISE EXCEPTION 'the request window is not open'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'draw_window_closed';
    END IF;
    NEW.office_id := w.office_id;
    NEW.service_id := w.service_id;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION refuse_entry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.window_id IS DISTINCT FROM OLD.window_id
       OR NEW.office_id <> OLD.office_id OR NEW.service_id <> OLD.service_id
       OR NEW.days <> OLD.days OR NEW.parts <> OLD.parts OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'a draw entry''s request does not change'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'draw_entry_fixed';
    END IF;
    RETURN NEW;
END $$;

-- One open entry (waiting, or holding an offer) per identity on the list of
-- an office's service: per document, per phone, per address. Lapsed, left,
-- declined, expired and confirmed entries free the identity.
CREATE UNIQUE INDEX waitlist_one_per_document ON draw_entries (office_id, service_id, document_hash)
    WHERE window_id IS NULL AND document_hash IS NOT NULL AND outcome IN ('waiting', 'offered');
CREATE UNIQUE INDEX waitlist_one_per_phone ON draw_entries (office_id, service_id, phone_hash)
    WHERE window_id IS NULL AND phone_hash IS NOT NULL AND outcome IN ('waiting', 'offered');
CREATE UNIQUE INDEX waitlist_one_per_email ON draw_entries (office_id, service_id, email_hash)
    WHERE window_id IS NULL AND email_hash IS NOT NULL AND outcome IN ('waiting', 'offered');
-- The entry of an offer's booking: every freed seat asks whether it was one.
CREATE INDEX draw_entries_booking ON draw_entries (booking_id) WHERE booking_id IS NOT NULL;
-- The list in order of joining, for a freed seat and the office's page.
CREATE INDEX waitlist_in_order ON draw_entries (office_id, service_id, created_at, seq)
    WHERE window_id IS NULL AND outcome IN ('waiting', 'offered');

-- The offer of a waiting list's seat. The kinds of main, those of the
-- documents and feedback branch, and this one.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer', 'draw_not_served', 'document_ready', 'document_uncollected',
    'feedback', 'waitlist_offer'));
