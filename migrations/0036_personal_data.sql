-- Personal data goes away: a booking is anonymised RETENTION_DAYS after its
-- appointment (the worker's daily job) or at once on an erasure request.
-- Office, service, times and statuses stay for the statistics.
ALTER TABLE bookings ADD COLUMN anonymised_at timestamptz;

-- An anonymised booking has no contact left: the "phone or e-mail" rule
-- holds for the others only.
DO $$
DECLARE
    contact text;
BEGIN
    SELECT conname INTO contact FROM pg_constraint
    WHERE conrelid = 'bookings'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%phone IS NOT NULL%email IS NOT NULL%';
    EXECUTE format('ALTER TABLE bookings DROP CONSTRAINT %I', contact);
END $$;
ALTER TABLE bookings ADD CONSTRAINT bookings_contact
    CHECK (anonymised_at IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL);
ALTER TABLE bookings ADD CONSTRAINT bookings_anonymised
    CHECK (anonymised_at IS NULL
           OR (phone IS NULL AND email IS NULL AND email_key IS NULL
               AND document_number IS NULL));

-- The retention job's question: bookings not anonymised yet, oldest first.
CREATE INDEX bookings_to_anonymise ON bookings (starts_at) WHERE anonymised_at IS NULL;
