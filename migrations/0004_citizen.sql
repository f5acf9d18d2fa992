-- One-time keys of the citizen booking form. Each rendered form carries a
-- random key; the booking transaction claims its hash first, so a second
-- submission of the same form (double click, back and resubmit) finds the
-- claim and is shown the first booking instead of making another. Only a
-- hash is stored: the key itself can open the booking it produced.
CREATE TABLE form_keys (
    key_hash   bytea PRIMARY KEY,
    booking_id bigint REFERENCES bookings (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX form_keys_created ON form_keys (created_at);
