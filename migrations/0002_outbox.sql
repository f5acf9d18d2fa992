-- Notification outbox: one row per message, written in the same transaction
-- as the booking change that causes it.  Postgres is the truth about what has
-- to be sent; Redis/arq only carries "send row N now" for rows already due.

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    booking_id      bigint NOT NULL REFERENCES bookings (id),
    kind            text NOT NULL CHECK (kind IN ('confirmation', 'rescheduled',
                        'cancelled_by_citizen', 'cancelled_by_office', 'reminder',
                        'sms_fallback')),
    channel         text NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient       text NOT NULL,
    language        text NOT NULL CHECK (language IN ('ar', 'fr', 'en')),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending',
                        'sent', 'delivered', 'undelivered', 'failed', 'skipped', 'cancelled')),
    send_at         timestamptz NOT NULL,
    -- The appointment start this message speaks about; a reminder is void once
    -- the booking starts at another time.  Also the retry deadline.
    appointment_at  timestamptz NOT NULL,
    offset_minutes  integer,
    -- The office's reason for an office cancellation.
    reason          text,
    -- The message an sms_fallback email repeats.
    fallback_of     bigint REFERENCES outbox (id),
    -- Lease of the worker that claimed the row; past it the sweeper takes the
    -- row back (the worker died or hung).
    claimed_until   timestamptz,
    -- When the sweeper last handed the row to arq: it is not queued again
    -- while that job is waiting, only if Redis lost it (after a while).
    enqueued_at     timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    rate_limit_waits integer NOT NULL DEFAULT 0,
    -- What was sent: the SMS text or the email's plain-text part.
    body            text,
    segments        integer,
    encoding        text,
    provider_id     text,
    error_code      text,
    status_reason   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    delivered_at    timestamptz,
    CHECK (status <> 'pending' OR claimed_until IS NULL)
);

-- The sweeper's query: due pending rows, earliest first.  Partial, so its
-- size is the backlog of pending rows, not the table's history.
CREATE INDEX outbox_due ON outbox (send_at) WHERE status = 'pending';
-- Rows whose lease may have run out.
CREATE INDEX outbox_leased ON outbox (claimed_until) WHERE status = 'sending';
CREATE INDEX outbox_booking ON outbox (booking_id);
CREATE UNIQUE INDEX outbox_provider_id ON outbox (provider_id) WHERE provider_id IS NOT NULL;
-- At most one email fallback per failed SMS, however often Twilio calls back.
CREATE UNIQUE INDEX outbox_one_fallback ON outbox (fallback_of) WHERE fallback_of IS NOT NULL;

-- Numbers whose owner replied STOP (Twilio error 21610): later SMS to them are
-- skipped instead of failing at the provider.
CREATE TABLE sms_opt_outs (
    phone      text PRIMARY KEY,
    error_code text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
