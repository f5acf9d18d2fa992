-- Extra manage tokens of a booking, one per message that carries a manage
-- link. Only hashes are stored, so the worker cannot re-create the token shown
-- at booking; it issues a fresh one for each message instead.
CREATE TABLE manage_tokens (
    token_hash bytea PRIMARY KEY,
    booking_id bigint NOT NULL REFERENCES bookings (id),
    outbox_id  bigint REFERENCES outbox (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX manage_tokens_booking ON manage_tokens (booking_id);
