-- Feedback after the visit (issue 16): a few hours after an appointment is
-- done, one message links to a one-page form (a 1-5 rating, "did you have to
-- come back?", an optional comment). Recorded once per booking.

CREATE TABLE feedback (
    booking_id  bigint PRIMARY KEY REFERENCES bookings (id),
    office_id   text NOT NULL REFERENCES offices (id),
    service_id  text NOT NULL,
    -- The appointment's start: statistics count a visit in its week.
    visit_at    timestamptz NOT NULL,
    rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    came_back   boolean NOT NULL,
    -- Kept without the personal data the citizen may have typed (the
    -- domain's scrub runs before the insert).
    comment     text CHECK (length(comment) BETWEEN 1 AND 1000),
    language    text NOT NULL CHECK (language IN ('ar', 'fr', 'en', 'es', 'zgh')),
    created_at  timestamptz NOT NULL,
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id)
);
CREATE INDEX feedback_office_visit ON feedback (office_id, visit_at);

-- Contacts that turned feedback messages off: a keyed hash of the phone
-- number or address (service.domain.verification.contact_hash), never the
-- contact itself.
CREATE TABLE feedback_opt_outs (
    contact_hash bytea PRIMARY KEY,
    created_at   timestamptz NOT NULL
);

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code', 'draw_offer', 'draw_not_served', 'document_ready', 'document_uncollected', 'feedback'));
-- One feedback message per booking, on one channel, whatever writes it.
CREATE UNIQUE INDEX outbox_one_feedback ON outbox (booking_id) WHERE kind = 'feedback';
