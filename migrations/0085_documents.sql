-- "Your document is ready" (issue 16): the file of a booking whose service
-- produces a document (passport, CNIE, civil-status copies) goes through
-- received -> in_production -> ready -> collected, or refused with a reason.
-- The citizen is told when it is ready, and reminded once when it is not
-- collected after DOCUMENT_REMINDER_DAYS.

ALTER TABLE services
    ADD COLUMN produces_document boolean NOT NULL DEFAULT false,
    -- Whether collecting the document takes a (short) pickup appointment.
    ADD COLUMN pickup_by_appointment boolean NOT NULL DEFAULT false;

-- Wall-clock pickup hours on working days, in the office's zone.
ALTER TABLE offices
    ADD COLUMN pickup_from  time NOT NULL DEFAULT '14:00',
    ADD COLUMN pickup_until time NOT NULL DEFAULT '16:00',
    ADD CONSTRAINT offices_pickup_hours CHECK (pickup_from < pickup_until);

CREATE TABLE document_files (
    booking_id     bigint PRIMARY KEY REFERENCES bookings (id),
    office_id      text NOT NULL REFERENCES offices (id),
    state          text NOT NULL CHECK (state IN
                       ('received', 'in_production', 'ready', 'collected', 'refused')),
    refusal_reason text CHECK (length(refusal_reason) BETWEEN 1 AND 300),
    received_at    timestamptz NOT NULL,
    ready_at       timestamptz,
    collected_at   timestamptz,
    -- When the one reminder about an uncollected document was written.
    reminded_at    timestamptz,
    updated_at     timestamptz NOT NULL,
    CHECK ((state = 'refused') = (refusal_reason IS NOT NULL)),
    CHECK (state NOT IN ('ready', 'collected') OR ready_at IS NOT NULL),
    CHECK ((state = 'collected') = (collected_at IS NOT NULL)),
    CHECK (reminded_at IS NULL OR ready_at IS NOT NULL)
);
-- The office's list of uncollected documents, oldest first, and the
-- reminder job's scan.
CREATE INDEX document_files_uncollected ON document_files (office_id, ready_at)
    WHERE state = 'ready';
CREATE INDEX document_files_to_remind ON document_files (ready_at)
    WHERE state = 'ready' AND reminded_at IS NULL;

-- A file only moves along its machine, whatever statement tries
-- (service.domain.documents holds the same table, for the refusals' words).
CREATE FUNCTION refuse_document_jump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state = 'received' THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'a document file starts received'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'document_transition';
    END IF;
    IF NEW.state = OLD.state THEN
        RETURN NEW;
    END IF;
    IF (OLD.state, NEW.state) IN (('received', 'in_production'), ('received', 'refused'),
                                  ('in_production', 'ready'), ('in_production', 'refused'),
                                  ('ready', 'collected')) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a document file cannot go from % to %', OLD.state, NEW.state
        USING ERRCODE = 'check_violation', CONSTRAINT = 'document_transition';
END $$;

CREATE TRIGGER document_files_transition BEFORE INSERT OR UPDATE OF state ON document_files
    FOR EACH ROW EXECUTE FUNCTION refuse_document_jump();

-- The two messages, each at most once per booking and channel.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer', 'draw_not_served', 'document_ready', 'document_uncollected'));
CREATE UNIQUE INDEX outbox_once_after_visit ON outbox (booking_id, kind, channel)
    WHERE kind IN ('document_ready', 'document_uncollected');
