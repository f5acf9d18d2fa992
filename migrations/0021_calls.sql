-- The waiting room's call-in: an agent at a counter calls the next citizen
-- who checked in, and the office's public display shows the last calls.
-- One call per booking (the unique booking_id): two agents pressing "call
-- next" at the same moment never call the same citizen.
CREATE TABLE calls (
    id         bigserial PRIMARY KEY,
    office_id  text NOT NULL REFERENCES offices (id) ON DELETE CASCADE,
    booking_id bigint NOT NULL UNIQUE REFERENCES bookings (id),
    counter    integer NOT NULL CHECK (counter BETWEEN 1 AND 100),
    called_at  timestamptz NOT NULL,
    called_by  bigint REFERENCES staff (id) ON DELETE SET NULL
);
CREATE INDEX calls_office_time ON calls (office_id, called_at DESC);
