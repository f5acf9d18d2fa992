-- Booking core: offices, services, opening hours, closures, slots, bookings,
-- audit log. Every instant is timestamptz (UTC); wall-clock times (opening
-- hours) are `time` in the office's zone and only the domain layer turns them
-- into instants.

CREATE TABLE offices (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    kind             text NOT NULL CHECK (kind IN ('consulate', 'prefecture')),
    name_ar          text NOT NULL,
    name_fr          text NOT NULL,
    name_en          text NOT NULL,
    city_ar          text NOT NULL,
    city_fr          text NOT NULL,
    city_en          text NOT NULL,
    country          char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    timezone         text NOT NULL,
    address          text NOT NULL,
    reference_prefix text NOT NULL UNIQUE CHECK (reference_prefix ~ '^[A-Z]{2,5}$'),
    -- ISO countries whose public holidays close the office (MA always).
    holiday_countries text[] NOT NULL DEFAULT '{MA}',
    -- Reminder offsets before the appointment, in minutes (48 h and 3 h).
    reminder_offsets_minutes integer[] NOT NULL DEFAULT '{2880,180}',
    quiet_hours_start time NOT NULL DEFAULT '21:00',
    quiet_hours_end   time NOT NULL DEFAULT '08:00',
    email_from       text,
    email_reply_to   text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE services (
    office_id         text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    id                text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name_ar           text NOT NULL,
    name_fr           text NOT NULL,
    name_en           text NOT NULL,
    duration_minutes  integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 480),
    document_required boolean NOT NULL DEFAULT false,
    -- Booking window: no earlier than N hours ahead, no later than M days ahead.
    earliest_hours    integer NOT NULL DEFAULT 2 CHECK (earliest_hours >= 0),
    latest_days       integer NOT NULL DEFAULT 60 CHECK (latest_days >= 1),
    reschedule_cutoff_minutes integer NOT NULL DEFAULT 120 CHECK (reschedule_cutoff_minutes >= 0),
    bring_ar          text NOT NULL DEFAULT '',
    bring_fr          text NOT NULL DEFAULT '',
    bring_en          text NOT NULL DEFAULT '',
    active            boolean NOT NULL DEFAULT true,
    PRIMARY KEY (office_id, id)
);

-- Weekly wall-clock intervals. Rules with a date range (valid_from/valid_until,
-- e.g. Ramadan hours) replace the open-ended rules on the dates they cover;
-- service_id NULL means the rule serves every service of the office.
CREATE TABLE opening_hours (
    id          bigserial PRIMARY KEY,
    office_id   text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    service_id  text,
    weekday     smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),  -- 0 = Monday
    opens_at    time NOT NULL,
    closes_at   time NOT NULL,
    counters    integer NOT NULL CHECK (counters BETWEEN 1 AND 100),
    valid_from  date,
    valid_until date,
    label       text NOT NULL DEFAULT '',
    CHECK (opens_at < closes_at),
    CHECK ((valid_from IS NULL) = (valid_until IS NULL)),
    CHECK (valid_from IS NULL OR valid_from <= valid_until),
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id) ON DELETE CASCADE
);
CREATE INDEX opening_hours_office ON opening_hours (office_id);

-- Days an office is closed: public holidays (source 'holiday', written by slot
-- generation from the `holidays` package) and manual closures.
CREATE TABLE closures (
    office_id  text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    day        date NOT NULL,
    source     text NOT NULL CHECK (source IN ('holiday', 'manual')),
    reason_ar  text NOT NULL DEFAULT '',
    reason_fr  text NOT NULL DEFAULT '',
    reason_en  text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (office_id, day)
);

CREATE TABLE slots (
    id         bigserial PRIMARY KEY,
    office_id  text NOT NULL,
    service_id text NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    -- Seats offered. Regeneration may lower it (down to 0 for a new closure)
    -- below `taken`: existing bookings stay, no new one fits.
    capacity   integer NOT NULL CHECK (capacity >= 0),
    -- Active bookings holding a seat; only changed by the guarded statements
    -- in service/store/slots.py, in the same transaction as the booking row.
    taken      integer NOT NULL DEFAULT 0 CHECK (taken >= 0),
    CHECK (starts_at < ends_at),
    UNIQUE (office_id, service_id, starts_at),
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id) ON DELETE CASCADE
);
CREATE INDEX slots_office_start ON slots (office_id, starts_at);

CREATE TABLE bookings (
    id                bigserial PRIMARY KEY,
    reference         text NOT NULL UNIQUE,
    office_id         text NOT NULL REFERENCES offices (id),
    service_id        text NOT NULL,
    slot_id           bigint NOT NULL REFERENCES slots (id),
    -- Copied from the slot so that reminders can tell when a booking moved.
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN
                        ('held', 'confirmed', 'checked_in', 'done', 'no_show', 'cancelled', 'expired')),
    citizen_name      text NOT NULL CHECK (length(citizen_name) BETWEEN 1 AND 200),
    phone             text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email             text CHECK (length(email) <= 254),
    language          text NOT NULL CHECK (language IN ('ar', 'fr', 'en')),
    document_number   text CHECK (document_number ~ '^[A-Z0-9]{4,30}$'),
    manage_token_hash bytea NOT NULL,
    hold_expires_at   timestamptz,
    cancel_reason     text,
    created_by        text NOT NULL DEFAULT 'citizen',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (phone IS NOT NULL OR email IS NOT NULL),
    FOREIGN KEY (office_id, service_id) REFERENCES services (office_id, id)
);
-- One active booking per identity document and service, across every office.
CREATE UNIQUE INDEX bookings_one_active_per_document
    ON bookings (document_number, service_id)
    WHERE document_number IS NOT NULL AND status IN ('held', 'confirmed', 'checked_in');
CREATE INDEX bookings_office_start ON bookings (office_id, starts_at);
CREATE INDEX bookings_slot ON bookings (slot_id);

CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    booking_id    bigint NOT NULL REFERENCES bookings (id),
    at            timestamptz NOT NULL DEFAULT now(),
    actor_kind    text NOT NULL CHECK (actor_kind IN ('citizen', 'staff', 'system')),
    actor_id      text,
    action        text NOT NULL,
    before_status text,
    after_status  text,
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_booking ON audit_log (booking_id, at);
