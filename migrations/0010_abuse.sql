-- Abuse resistance (issue 10): a public booking holds its seat until the
-- citizen proves the phone or e-mail address it gave (a 6-digit code), a
-- household cap per phone number and per e-mail address, a cap on a
-- citizen's reschedules, and the countries an office's SMS may go to.

-- Per office: active public bookings allowed per phone number and per
-- e-mail address, and the countries (besides its own and Morocco) whose
-- mobiles get SMS.
ALTER TABLE offices
    ADD COLUMN household_cap integer NOT NULL DEFAULT 4
        CHECK (household_cap BETWEEN 1 AND 100),
    ADD COLUMN sms_countries text[] NOT NULL DEFAULT '{}'
        CHECK (array_to_string(sms_countries, ',') ~ '^([A-Z]{2}(,[A-Z]{2})*)?$');

-- Per service: whether a public booking waits for a code, and how long its
-- seat is held meanwhile.
ALTER TABLE services
    ADD COLUMN verify_contact boolean NOT NULL DEFAULT true,
    ADD COLUMN hold_minutes integer NOT NULL DEFAULT 10 CHECK (hold_minutes BETWEEN 1 AND 60);

ALTER TABLE bookings
    -- The e-mail address as the household cap compares it (lower case, no
    -- +tag, no dots where the provider ignores them); set by the domain code.
    ADD COLUMN email_key text,
    -- Whether messages may go to the phone / the address: false until the
    -- citizen proved it (a code, or a contact verified on an earlier booking).
    ADD COLUMN notify_phone boolean NOT NULL DEFAULT true,
    ADD COLUMN notify_email boolean NOT NULL DEFAULT true,
    -- Moves the citizen made (staff moves are not counted).
    ADD COLUMN citizen_reschedules integer NOT NULL DEFAULT 0 CHECK (citizen_reschedules >= 0),
    ADD CONSTRAINT bookings_held_expires CHECK (status <> 'held' OR hold_expires_at IS NOT NULL);

-- Rows made before this migration: an approximation of the domain's key.
UPDATE bookings SET email_key = lower(email) WHERE email IS NOT NULL;

-- Holds whose time is up, for the worker's cron and the lazy expiry on read.
CREATE INDEX bookings_holds ON bookings (hold_expires_at) WHERE status = 'held';
CREATE INDEX bookings_household_phone ON bookings (office_id, phone)
    WHERE status IN ('held', 'confirmed') AND created_by = 'citizen' AND phone IS NOT NULL;
CREATE INDEX bookings_household_email ON bookings (office_id, email_key)
    WHERE status IN ('held', 'confirmed') AND created_by = 'citizen' AND email_key IS NOT NULL;

-- The household cap, whatever statement inserts the booking: a public
-- booking is refused when the office already has household_cap active (held
-- or confirmed) public bookings with its phone number or its e-mail key.
-- Bookings made by staff at the counter are neither limited nor counted.
-- The advisory locks (one per contact, taken in a fixed order) make two
-- bookings of one household queue here, so that each counts the other.
CREATE FUNCTION refuse_over_household_cap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
    contact text;
BEGIN
    SELECT household_cap INTO cap FROM offices WHERE id = NEW.office_id;
    FOR contact IN
        SELECT c FROM unnest(ARRAY['phone:' || NEW.phone, 'email:' || NEW.email_key]) AS c
        WHERE c IS NOT NULL ORDER BY c
    LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(NEW.office_id || '|' || contact, 10));
    END LOOP;
    IF NEW.phone IS NOT NULL AND (
        SELECT count(*) FROM bookings
        WHERE office_id = NEW.office_id AND phone = NEW.phone
          AND status IN ('held', 'confirmed') AND created_by = 'citizen'
    ) >= cap THEN
        RAISE EXCEPTION 'household cap reached for this phone number'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'household_cap_phone';
    END IF;
    IF NEW.email_key IS NOT NULL AND (
        SELECT count(*) FROM bookings
        WHERE office_id = NEW.office_id AND email_key = NEW.email_key
          AND status IN ('held', 'confirmed') AND created_by = 'citizen'
    ) >= cap THEN
        RAISE EXCEPTION 'household cap reached for this e-mail address'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'household_cap_email';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER bookings_household_cap BEFORE INSERT ON bookings
    FOR EACH ROW WHEN (NEW.created_by = 'citizen' AND NEW.status IN ('held', 'confirmed'))
    EXECUTE FUNCTION refuse_over_household_cap();

-- A check of a contact: the codes sent for it (keyed hashes only; any of
-- them is accepted until the hold ends, since messages may arrive out of
-- order), the wrong attempts and the sends. Its booking's hold_expires_at is
-- its deadline.
CREATE TABLE contact_checks (
    id           bigserial PRIMARY KEY,
    booking_id   bigint UNIQUE REFERENCES bookings (id) ON DELETE CASCADE,
    channel      text NOT NULL CHECK (channel IN ('sms', 'email')),
    code_hashes  bytea[] NOT NULL DEFAULT '{}',
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Code messages asked for, the first one included.
    sends        integer NOT NULL DEFAULT 1 CHECK (sends >= 1),
    last_send_at timestamptz NOT NULL,
    verified_at  timestamptz,
    created_at   timestamptz NOT NULL
);

-- Phone numbers and addresses proved by a code, by keyed hash only: a
-- returning citizen is not asked again for a while.
CREATE TABLE verified_contacts (
    contact_hash bytea PRIMARY KEY,
    verified_at  timestamptz NOT NULL
);
CREATE INDEX verified_contacts_at ON verified_contacts (verified_at);

-- The code message.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation',
    'rescheduled', 'cancelled_by_citizen', 'cancelled_by_office', 'reminder', 'sms_fallback',
    'code'));
-- Codes sent to a contact in the last day, for the per-contact budget.
CREATE INDEX outbox_codes ON outbox (recipient, created_at) WHERE kind = 'code';
-- SMS sent to a number in the last day, for the per-number cap.
CREATE INDEX outbox_sms_recipient ON outbox (recipient, sent_at) WHERE channel = 'sms';
