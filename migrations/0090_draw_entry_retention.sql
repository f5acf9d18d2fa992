-- A draw entry holds a name, contacts and maybe a document number; like a
-- booking it is anonymised RETENTION_DAYS after the period it asked for.
-- Its id, wishes, position and outcome stay: the public record replays from
-- ids alone.
ALTER TABLE draw_entries ADD COLUMN anonymised_at timestamptz;

DO $$
DECLARE
    contact text;
BEGIN
    SELECT conname INTO contact FROM pg_constraint
    WHERE conrelid = 'draw_entries'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%phone IS NOT NULL%email IS NOT NULL%';
    EXECUTE format('ALTER TABLE draw_entries DROP CONSTRAINT %I', contact);
END $$;
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_contact
    CHECK (anonymised_at IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL);
ALTER TABLE draw_entries ADD CONSTRAINT draw_entries_anonymised
    CHECK (anonymised_at IS NULL
           OR (phone IS NULL AND email IS NULL AND document_number IS NULL
               AND phone_hash IS NULL AND email_hash IS NULL AND document_hash IS NULL));
